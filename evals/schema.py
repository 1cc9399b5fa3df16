"""Eval cases as data: a pydantic model for the YAML files in `evals/cases/`.

A broken case must fail CI with a message that names the file and the field, so loading goes through
`load_case(path)` which turns pydantic's report into one `InputError` line.
"""

from __future__ import annotations

import re
from itertools import product
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cutpilot.errors import InputError
from cutpilot.models import ClipFormat
from cutpilot.storyboard import Brief, SlotRole

CASES_DIR = Path(__file__).parent / "cases"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*@v\d+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expectations(_Strict):
    """What a good ad for this brief looks like. Clip references are golden-library keys (see golden/)."""

    duration_s: tuple[float, float] | None = Field(default=None, description="allowed [min, max] total seconds")
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] | None = None
    roles_in_order: list[SlotRole] = Field(
        default_factory=list, description="roles that must appear, in this relative order (a subsequence)"
    )
    first_role: list[SlotRole] = Field(default_factory=list, description="acceptable roles for the first slot")
    last_role: list[SlotRole] = Field(default_factory=list, description="acceptable roles for the last slot")
    relevant: dict[SlotRole, list[str]] = Field(
        default_factory=dict, description="role → golden keys that are good picks for it (graded by list order)"
    )
    product: str | None = Field(default=None, description="every chosen clip must be of this product")
    must_not_use: list[str] = Field(default_factory=list, description="golden keys that must never be chosen")
    formats: list[ClipFormat] = Field(default_factory=list, description="every library clip used is of one of these")
    slot_formats: dict[int, list[ClipFormat]] = Field(
        default_factory=dict, description="slot index (0-based) → formats its clip must have (e.g. after a revision)"
    )
    required_words: list[str] = Field(default_factory=list, description="each must occur in narration/captions")
    forbidden_words: list[str] = Field(
        default_factory=lambda: ["根治", "cure", "100% guaranteed", "无效退款", "永久"],
        description="unsubstantiated claims that must never be said or shown",
    )
    language: Literal["zh", "en"] | None = None
    max_repeat_rate: float = Field(default=0.0, ge=0, le=1)

    @field_validator("duration_s")
    @classmethod
    def _window(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0 < v[0] <= v[1]):
            raise ValueError(f"duration_s must be [min, max] with 0 < min <= max, got {list(v)}")
        return v


class RevisionTurn(_Strict):
    """One revision request after the first plan, with what must hold afterwards (merged over the base)."""

    request: str = Field(min_length=1)
    expect: Expectations | None = None
    expect_changed_slots_max: int | None = Field(
        default=None, ge=0, description="a patch, not a regeneration: at most this many slots may change"
    )
    expect_changed_slots_min: int | None = Field(
        default=None, ge=0, description="the revision must actually do something: at least this many slots change"
    )
    expect_answered: bool = Field(
        default=True, description="score revision_answered: the change was made, or a message says why not"
    )
    expect_message: bool = Field(
        default=False, description="the request cannot be applied: only a message (why not, alternatives) answers it"
    )


class Variants(_Strict):
    """A 千人千面 matrix: one case expands to the cross product (audience × aspect × duration)."""

    audiences: list[str] = Field(default_factory=lambda: [""])
    aspects: list[Literal["9:16", "1:1", "4:5", "16:9"]] = Field(default_factory=list)
    durations: list[float] = Field(default_factory=list)

    def expand(self) -> list[dict[str, Any]]:
        aud = self.audiences or [""]
        asp: list[str | None] = list(self.aspects) or [None]
        dur: list[float | None] = list(self.durations) or [None]
        return [{"audience": a, "aspect": s, "duration_s": d} for a, s, d in product(aud, asp, dur)]


class Case(_Strict):
    id: str = Field(description="slug@vN; bump the version when the expectations change meaning")
    description: str = ""
    brief: str | Brief
    expect: Expectations = Field(default_factory=Expectations)
    revisions: list[RevisionTurn] = Field(default_factory=list)
    variants: Variants | None = None
    render: bool = Field(default=False, description="render this case when the eval runs with --render")
    tags: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"id {v!r} must look like 'slug@v1' (lower-case slug, then @v and a number)")
        return v

    @field_validator("brief", mode="before")
    @classmethod
    def _brief(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            raise ValueError("brief text is empty")
        return v

    @model_validator(mode="after")
    def _variants_need_structure(self) -> Case:
        if self.variants is not None and self.revisions:
            raise ValueError("a case has either variants or revisions, not both")
        return self

    @property
    def lang(self) -> str | None:
        if self.expect.language:
            return self.expect.language
        return self.brief.lang if isinstance(self.brief, Brief) else None

    def golden_keys(self) -> set[str]:
        """Every golden key the case refers to (checked against the golden spec by the loader)."""
        keys: set[str] = set()
        for exp in [self.expect, *[r.expect for r in self.revisions if r.expect]]:
            for ks in exp.relevant.values():
                keys.update(ks)
            keys.update(exp.must_not_use)
        return keys

    def expand(self) -> list[Case]:
        """Variant cases (ids suffixed with the cell) — or just [self]."""
        if self.variants is None:
            return [self]
        base = self.brief if isinstance(self.brief, Brief) else Brief(text=self.brief)
        out: list[Case] = []
        for cell in self.variants.expand():
            upd: dict[str, Any] = {}
            exp_upd: dict[str, Any] = {}
            suffix: list[str] = []
            if cell["audience"]:
                upd["audience"] = cell["audience"]
                slug_a = re.sub(r"[^a-z0-9]+", "-", cell["audience"].lower()).strip("-")
                suffix.append(slug_a or f"aud{self.variants.audiences.index(cell['audience']) + 1}")
            if cell["aspect"]:
                upd["aspect"] = cell["aspect"]
                exp_upd["aspect"] = cell["aspect"]
                suffix.append(cell["aspect"].replace(":", "x"))
            if cell["duration_s"]:
                d = float(cell["duration_s"])
                upd["duration_s"] = d
                exp_upd["duration_s"] = (d - 0.5, d + 0.5)
                suffix.append(f"{d:g}s")
            slug, ver = self.id.split("@")
            cid = f"{slug}-{'-'.join(suffix) or 'base'}@{ver}"
            out.append(
                self.model_copy(
                    update={
                        "id": cid,
                        "brief": base.model_copy(update=upd),
                        "expect": self.expect.model_copy(update=exp_upd),
                        "variants": None,
                    }
                )
            )
        return out


def merged(base: Expectations, turn: Expectations | None) -> Expectations:
    """Expectations after a revision: fields the turn sets replace the base's."""
    if turn is None:
        return base
    return base.model_copy(update={k: getattr(turn, k) for k in turn.model_fields_set})


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or "top level"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" ({len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"field {loc}: {msg}{more}"


def load_case_file(path: Path) -> list[Case]:
    """One YAML file holds one case (a mapping) or several (a list). Errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"eval case {path.name}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    except OSError as e:
        raise InputError(f"eval case {path}: cannot read ({e.strerror})") from None
    items = data if isinstance(data, list) else [data]
    cases: list[Case] = []
    for i, item in enumerate(items):
        where = path.name if len(items) == 1 else f"{path.name}[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"eval case {where}: expected a mapping with id, brief, expect")
        try:
            cases.append(Case.model_validate(item))
        except ValidationError as e:
            raise InputError(f"eval case {where}: {_first_error(e)}") from None
    return cases


def load_cases(pattern: str = "*.yaml", directory: Path | None = None, *, known_keys: set[str] | None = None,
               expand: bool = True) -> list[Case]:
    """All cases matching the glob, ids unique, golden keys known (when `known_keys` is given)."""
    d = directory or CASES_DIR
    p = Path(pattern)
    files = sorted(p.parent.glob(p.name)) if p.is_absolute() or p.parent != Path(".") else sorted(d.glob(pattern))
    if not files:
        raise InputError(f"no eval cases match {pattern!r} in {d}")
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for f in files:
        for c in load_case_file(f):
            if c.id in seen:
                raise InputError(f"eval case {f.name}: field id: {c.id!r} already defined in {seen[c.id]}")
            seen[c.id] = f.name
            if known_keys is not None:
                unknown = sorted(c.golden_keys() - known_keys)
                if unknown:
                    raise InputError(f"eval case {f.name}: field expect: unknown golden clip key(s) {unknown}")
            cases.extend(c.expand() if expand else [c])
    return cases
