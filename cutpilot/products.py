"""Product facts: what the ad may say about a product (selling points, offer, banned claims, brand kit).

Clips only say which product they show (`ClipRecord.product`); the words an ad may use about that product come
from here, so the planner states facts the merchant gave instead of inventing them. Facts are imported from a
human-written YAML file into `CUTPILOT_HOME/products.json` (`cutpilot products import FILE.yaml`).

Validation is strict on purpose: a typo'd key, a number where text is expected or an alias shared by two
products is an error naming the file, the product and the field, never a silent coercion, because a wrong fact
ends up spoken in an ad.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from cutpilot.errors import InputError, NotFoundError
from cutpilot.settings import Settings

__all__ = [
    "BrandKit",
    "Product",
    "ProductBook",
    "ProductStore",
    "load_book",
    "load_products_file",
    "parse_products",
]

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# Characters that make a Latin "word": a name starting/ending with one must not touch another (LEGO ≠ LEGOLAND).
_LATIN_WORD = "0-9a-z\u00df-\u024f"
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})


def _key(text: str) -> str:
    """Comparison form: width (NFKC), case, Latin accents, curly apostrophes and spacing do not matter."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(ch for ch in t if not "\u0300" <= ch <= "\u036f")
    t = unicodedata.normalize("NFKC", t).casefold().translate(_APOSTROPHES)
    return " ".join(t.split())


def _has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def _is_zh(lang: str) -> bool:
    """'zh', 'zh-CN', 'cmn' → Chinese; every other language uses the English facts."""
    return lang.strip().lower().startswith(("zh", "cmn"))


def _clean_list(value: list[str]) -> list[str]:
    """Strip items, refuse empty ones (an empty alias would match every brief), drop exact repeats."""
    out: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(value, 1):
        text = " ".join(item.split())
        if not text:
            raise ValueError(f"item {i} is empty")
        if _key(text) not in seen:
            seen.add(_key(text))
            out.append(text)
    return out


class BrandKit(BaseModel):
    """What the renderer may brand an ad with: a logo file, colours and a font (free text, checked at render)."""

    model_config = ConfigDict(extra="forbid")

    logo: str | None = None
    colours: list[str] = []
    font: str | None = None

    @field_validator("colours", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        """A key left blank in YAML (`colours:`) means no items, not an error."""
        return [] if v is None else v

    @field_validator("logo", "font")
    @classmethod
    def _opt_text(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None

    @field_validator("colours")
    @classmethod
    def _list(cls, v: list[str]) -> list[str]:
        return _clean_list(v)


class Product(BaseModel):
    """One product's facts. zh and en are separate fields: the planner never translates a claim on its own."""

    model_config = ConfigDict(extra="forbid")

    name: str
    aliases: list[str] = []
    selling_points: list[str] = []
    selling_points_en: list[str] = []
    offer: str | None = None
    offer_en: str | None = None
    audience: str | None = None
    banned_claims: list[str] = []
    # efficacy claim → the evidence that backs it (e.g. 抗皱: "SGS 人体功效评价报告 No. …"); without an entry an
    # efficacy claim (抗皱, 淡纹, 美白 …) is never said (agent.claims, 化妆品功效宣称评价规范)
    claim_evidence: dict[str, str] = {}
    brand: BrandKit | None = None
    # a garment's attributes (tools.garments keys, aliases accepted: {top_category: 大衣, top_length: 长款}): gap
    # filling ranks the library's model photos against them for try-on
    garment: dict[str, str] = {}
    # selling points that lead for one audience ({kids 8-12: [齿轮真的会转], adult collectors: [2,000+ parts]}):
    # an audience variant of a brief opens with these (either language; each line takes those in its own)
    audience_points: dict[str, list[str]] = {}

    LIST_FIELDS: ClassVar[tuple[str, ...]] = ("aliases", "selling_points", "selling_points_en", "banned_claims")
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("offer", "offer_en", "audience")

    @field_validator(*LIST_FIELDS, mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        """A key left blank in YAML (`aliases:`) means no items, not an error."""
        return [] if v is None else v

    @field_validator("claim_evidence", mode="before")
    @classmethod
    def _blank_map(cls, v: object) -> object:
        return {} if v is None else v

    @field_validator("claim_evidence")
    @classmethod
    def _evidence(cls, v: dict[str, str]) -> dict[str, str]:
        """Claims and evidence are both named: an empty one would back a claim with nothing."""
        out: dict[str, str] = {}
        for claim, evidence in v.items():
            c, e = " ".join(claim.split()), " ".join(evidence.split())
            if not c:
                raise ValueError("a claim is empty")
            if not e:
                raise ValueError(f"claim {c!r} has no evidence; name the report (or drop the claim)")
            out[c] = e
        return out

    @field_validator("garment", mode="before")
    @classmethod
    def _garment(cls, v: object) -> object:
        from tools.garments import parse_garment

        if v is None or v == "":
            return {}
        try:
            return parse_garment(v)
        except InputError as e:
            raise ValueError(str(e).removeprefix("garment: ")) from None

    @field_validator("audience_points", mode="before")
    @classmethod
    def _blank_points(cls, v: object) -> object:
        return {} if v is None else v

    @field_validator("audience_points")
    @classmethod
    def _aud_points(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        out = {" ".join(k.split()): _clean_list(p) for k, p in v.items()}
        if "" in out:
            raise ValueError("an audience is empty")
        return out

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator(*TEXT_FIELDS)
    @classmethod
    def _opt_text(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None

    @field_validator(*LIST_FIELDS)
    @classmethod
    def _list(cls, v: list[str]) -> list[str]:
        return _clean_list(v)

    @model_validator(mode="after")
    def _alias_not_name(self) -> Product:
        self.aliases = [a for a in self.aliases if _key(a) != _key(self.name)]
        return self

    def names(self) -> list[str]:
        """The name, then the aliases (no duplicates): every string a brief or an annotation may call it."""
        return [self.name, *self.aliases]

    def display_name(self, lang: str) -> str:
        """The name to say or caption in `lang`: en → first name without CJK, zh → first with CJK (else `name`)."""
        want_cjk = _is_zh(lang)
        return next((n for n in self.names() if _has_cjk(n) == want_cjk), self.name)

    def points(self, lang: str) -> list[str]:
        """Selling points in `lang`; no zh fallback for en (an untranslated claim is worse than none)."""
        return list(self.selling_points if _is_zh(lang) else self.selling_points_en)

    def points_for(self, audience: str | None, lang: str) -> list[str]:
        """The points that lead for `audience` in `lang`: listed under its label (case-insensitive), else under
        a label of the same audience profile (agent.audiences: 'kids 8-12' and '小朋友' are one profile)."""
        if not audience or not self.audience_points:
            return []
        want = _key(audience)
        hit = next((p for k, p in self.audience_points.items() if _key(k) == want), None)
        if hit is None:
            from agent.audiences import audience_profile

            prof = audience_profile(audience)
            if prof is not None:
                hit = next((p for k, p in self.audience_points.items()
                            if (q := audience_profile(k)) is not None and q.name == prof.name), None)
        return [p for p in hit or [] if _has_cjk(p) == _is_zh(lang)]

    def offer_for(self, lang: str) -> str | None:
        """The offer in `lang`, or None (no fallback to the other language, as for points)."""
        return self.offer if _is_zh(lang) else self.offer_en


def _allowed(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _what(value: object) -> str:
    """How a YAML value reads to a person, for 'expected text, got …'."""
    if isinstance(value, bool):
        return f"a true/false value ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, datetime | date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):  # a short preview: the message stays one readable line whatever the file holds
        preview = " ".join(value.split())
        return f"text ({preview[:40]!r}{'…' if len(preview) > 40 else ''})"
    return f"a {type(value).__name__}"


def _field_path(loc: tuple[int | str, ...]) -> str:
    """('brand', 'colours', 2) → "'brand.colours' item 3" (items counted from 1, as people do)."""
    names = [str(p) for p in loc if isinstance(p, str)]
    items = [p for p in loc if isinstance(p, int)]
    where = f"'{'.'.join(names)}'"
    return where + (f" item {items[-1] + 1}" if items else "")


def _explain(err: Any) -> str:
    """One pydantic error → one plain sentence naming the field."""
    loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        model: type[BaseModel] = BrandKit if loc[:1] == ("brand",) and len(loc) > 1 else Product
        key = str(loc[-1])
        close = difflib.get_close_matches(key, list(model.model_fields), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        shown = _field_path(loc).strip("'")
        return f"unknown key '{shown}' ({hint}allowed: {_allowed(model)})"
    field = _field_path(loc)
    if kind == "missing":
        return f"missing {field}"
    if kind == "string_type":
        hint = "; quote it if you mean text" if isinstance(value, int | float | bool | date) else ""
        return f"field {field}: expected text, got {_what(value)}{hint}"
    if kind == "list_type":
        return f"field {field}: expected a list of text (e.g. [a, b]), got {_what(value)}"
    if kind == "dict_type" and loc[:1] == ("claim_evidence",):
        example = "{抗皱: 'report No. …'}"
        return f"field {field}: expected a mapping of claim to evidence (e.g. {example}), got {_what(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"field {field}: expected a mapping ({_allowed(BrandKit)}), got {_what(value)}"
    if kind == "value_error":
        return f"field {field}: {err['ctx']['error']}"
    return f"field {field}: {err['msg']}"


def _label(index: int, raw: object) -> str:
    """Says "product 2 ('LEGO Technic')": the 1-based position and, when readable, the name."""
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"product {index}" + (f" ({' '.join(name.split())!r})" if isinstance(name, str) and name.strip() else "")


def _validate(raw: object, where: str) -> Product:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping ({_allowed(Product)}), got {_what(raw)}")
    try:
        return Product.model_validate(raw)
    except ValidationError as e:
        raise InputError(f"{where}: {_explain(e.errors()[0])}") from None


def _first_conflict(products: list[Product]) -> tuple[int, int, str] | None:
    """(later index, earlier index, the name or alias they share) for the first name/alias two products share."""
    owner: dict[str, int] = {}
    for i, p in enumerate(products):
        for n in p.names():
            k = _key(n)
            if owner.setdefault(k, i) != i:
                return i, owner[k], n
    return None


def _conflict_text(p: Product, other: Product, shared: str, where: str = "") -> str:
    """Says "alias 'X' is already the name of product 1 ('A')": which of the two is the name or an alias."""
    mine = "name" if _key(shared) == _key(p.name) else "alias"
    theirs = "the name" if _key(shared) == _key(other.name) else "an alias"
    owner = f"{where}({other.name!r})" if where else repr(other.name)
    return f"{mine} {shared!r} is already {theirs} of {owner}; a name or alias belongs to one product"


def parse_products(data: object, source: str) -> list[Product]:
    """Validate parsed YAML/JSON (`{products: [...]}` or a bare list); the first problem is one InputError line."""
    if isinstance(data, dict):
        unknown = [k for k in data if k not in ("products", "version")]
        if unknown:
            raise InputError(f"{source}: unknown top-level key {unknown[0]!r} (allowed: products, version)")
        if data.get("version", 1) != 1:
            raise InputError(f"{source}: unsupported version {data['version']!r} (this cutpilot reads version 1)")
        if "products" not in data:
            raise InputError(f"{source}: missing 'products' (a list of products)")
        data = data["products"]
    if data is None:
        raise InputError(f"{source}: no products; expected a list of products or {{products: [...]}}")
    if not isinstance(data, list):
        raise InputError(f"{source}: expected a list of products or {{products: [...]}}, got {_what(data)}")
    products = [_validate(raw, f"{source}: {_label(i, raw)}") for i, raw in enumerate(data, 1)]
    clash = _first_conflict(products)
    if clash:
        i, j, shared = clash
        p, other = products[i], products[j]
        clash_text = _conflict_text(p, other, shared, f"product {j + 1} ")
        raise InputError(f"{source}: {_label(i + 1, {'name': p.name})}: {clash_text}")
    return products


class _UniqueKeyLoader:
    """A yaml SafeLoader that refuses repeated keys (PyYAML keeps the last one silently: a lost fact)."""

    @staticmethod
    def make() -> Any:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
            seen: set[object] = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=deep)
                if not isinstance(key, str | int | float | bool):
                    continue
                if key in seen:
                    raise InputError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
                seen.add(key)
            return loader.construct_mapping(node, deep)

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
        return Loader


def load_products_file(path: Path) -> list[Product]:
    """Read a facts file: YAML (JSON is YAML too) holding `{products: [...]}` or a bare list."""
    import yaml

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{source}: cannot read ({e})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader.make())
    except InputError as e:
        raise InputError(f"{source}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise InputError(f"{source}: not valid YAML{where}: {problem}") from None
    return parse_products(data, source)


class ProductBook:
    """The known products, looked up by any name or alias (briefs say 紫熨斗, annotations say the full label)."""

    def __init__(self, products: list[Product]) -> None:
        clash = _first_conflict(products)
        if clash:
            i, j, shared = clash
            raise InputError(f"product book: {_label(i + 1, {'name': products[i].name})}: "
                             f"{_conflict_text(products[i], products[j], shared)}")  # fmt: skip
        self.products: list[Product] = list(products)
        self._by_key = {_key(n): p for p in self.products for n in p.names()}
        self._patterns = [(p, len(_key(n)), self._pattern(n)) for p in self.products for n in p.names()]

    @staticmethod
    def _pattern(name: str) -> re.Pattern[str]:
        """Latin ends must sit on word boundaries (LEGO does not match LEGOLAND); CJK ends match anywhere."""
        k = _key(name)
        body = r"\s+".join(re.escape(w) for w in k.split(" "))
        before = rf"(?<![{_LATIN_WORD}])" if re.match(rf"[{_LATIN_WORD}]", k) else ""
        after = rf"(?![{_LATIN_WORD}])" if re.search(rf"[{_LATIN_WORD}]$", k) else ""
        return re.compile(before + body + after)

    def __len__(self) -> int:
        return len(self.products)

    def __bool__(self) -> bool:
        return bool(self.products)

    def get(self, name_or_alias: str) -> Product | None:
        """Exact lookup on a name or alias, ignoring case, full/half width, accents and spacing."""
        return self._by_key.get(_key(name_or_alias))

    def match(self, text: str) -> Product | None:
        """The product a free-text brief or note mentions: the longest name/alias found wins, then the earliest."""
        t = _key(text)
        best: tuple[int, int, int] | None = None
        found: Product | None = None
        for order, (product, length, pattern) in enumerate(self._patterns):
            m = pattern.search(t)
            if m is None:
                continue
            rank = (length, -m.start(), -order)
            if best is None or rank > best:
                best, found = rank, product
        return found

    def names(self) -> list[str]:
        """Every product's `name` (the library label), in book order."""
        return [p.name for p in self.products]


class ProductStore:
    """The home's product book in `products.json`. Writes are atomic and locked: a bad import changes nothing."""

    EDITABLE: ClassVar[tuple[str, ...]] = (
        *(f for f in Product.model_fields if f not in ("brand", "audience_points")),
        "brand.logo", "brand.colours", "brand.font",
    )  # fmt: skip

    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.home) / "products.json"

    # --- reading / writing ---------------------------------------------------------------------------------
    def _read(self) -> list[Product]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{self.path}: not valid JSON at line {e.lineno} ({e.msg}); fix it, or delete it and "
                             "import the facts file again") from None  # fmt: skip
        return parse_products(data, str(self.path))

    def _write(self, products: list[Product]) -> None:
        """tmp file in the same directory + fsync + os.replace: readers see the old book or the new, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": 1, "products": [p.model_dump(mode="json") for p in products]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".products.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, ensure_ascii=False, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write so two concurrent imports/edits cannot drop each other's products."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX; atomic replace still protects the file itself
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.parent / ".products.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- public ------------------------------------------------------------------------------------------
    def book(self) -> ProductBook:
        """The stored products (an empty book when nothing was imported yet)."""
        return ProductBook(self._read())

    def import_file(self, path: Path) -> tuple[int, int]:
        """Upsert every product of a facts file by name (a re-imported product replaces the stored one whole).

        Returns (added, updated). The file is validated in full, and against the stored products, before anything
        is written.
        """
        incoming = load_products_file(path)
        with self._locked():
            merged = self._read()
            slot = {_key(p.name): i for i, p in enumerate(merged)}
            origin: dict[int, int] = {}  # merged index → 1-based position in the file
            added = updated = 0
            for n, p in enumerate(incoming, 1):
                i = slot.get(_key(p.name))
                if i is None:
                    slot[_key(p.name)] = len(merged)
                    origin[len(merged)] = n
                    merged.append(p)
                    added += 1
                else:
                    origin[i] = n
                    merged[i] = p
                    updated += 1
            clash = _first_conflict(merged)
            if clash:
                i, j, shared = clash
                mine, theirs = (i, j) if i in origin else (j, i)
                p = merged[mine]
                clash_text = _conflict_text(p, merged[theirs], shared, "stored product ")
                raise InputError(f"{path}: {_label(origin[mine], {'name': p.name})}: {clash_text} ({self.path})")
            self._write(merged)
        return added, updated

    def edit(self, name: str, updates: dict[str, str]) -> Product:
        """Change fields of one product (found by name or alias). List fields take "a|b|c"; "" clears a field.

        Renaming (`name=...`) changes the label clips are matched by; keep the old one as an alias if clips use it.
        """
        unknown = [k for k in updates if k not in self.EDITABLE]
        if unknown:
            raise InputError(f"cannot edit {unknown[0]!r}; editable fields: {', '.join(self.EDITABLE)}")
        with self._locked():
            products = self._read()
            book = ProductBook(products)
            current = book.get(name)
            if current is None:
                known = ", ".join(book.names()[:8]) or "none; import a facts file first"
                raise NotFoundError(f"no product named {name!r} (known: {known})")
            index = next(i for i, p in enumerate(products) if p is current)
            data = current.model_dump()
            for field, value in updates.items():
                top, _, sub = field.partition(".")
                target = data if not sub else (data.get("brand") or {})
                leaf = sub or top
                if leaf == "claim_evidence":  # "抗皱=report No. 1|淡纹=report No. 2"
                    pairs = [v.partition("=") for v in value.split("|") if v.strip()]
                    bad = next((k for k, eq, _ in pairs if not eq), None)
                    if bad is not None:
                        raise InputError(f"claim_evidence takes claim=evidence items separated by |, got {bad!r}")
                    target[leaf] = {k.strip(): v.strip() for k, _, v in pairs}
                elif leaf in Product.LIST_FIELDS or leaf == "colours":
                    target[leaf] = [v.strip() for v in value.split("|") if v.strip()]
                elif leaf == "name":
                    target[leaf] = value
                else:
                    target[leaf] = value.strip() or None
                if sub:
                    data["brand"] = target
            where = f"edit {current.name!r}"
            product = _validate(data, where)
            products[index] = product
            clash = _first_conflict(products)
            if clash:
                i, j, shared = clash
                other = products[j] if i == index else products[i]
                raise InputError(f"{where}: {_conflict_text(product, other, shared)}")
            self._write(products)
        return product


def load_book(settings: Settings) -> ProductBook:
    """The home's product book; empty when no facts were imported (callers then fall back to clip text only)."""
    return ProductStore(settings).book()
