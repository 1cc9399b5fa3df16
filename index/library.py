"""The clip library facade everyone else uses: records in, ranked clips out; vectors are its business.

Payloads are the full ClipRecord (flat JSON) so the store alone can rebuild every record; the filterable
fields (product, content_type, format, duration, tags, source_hash, generated) are indexed payload keys.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cutpilot.errors import InputError, NotFoundError, StoreError
from cutpilot.jsonl import read_objects
from cutpilot.models import EDITABLE_FIELDS, ClipRecord, clip_id_for, parse_content_type, parse_formats
from cutpilot.settings import Settings
from index.clipvec import ImageEmbedder, get_image_embedder
from index.embed import TextEmbedder, get_text_embedder
from index.lock import NamedLock, store_lock
from index.search import SearchFilters, SearchHit, bm25_document, hybrid_search
from index.store import ClipStore, Conditions, StoreMeta, StorePoint, resolve_backend

RECORD_FIELDS = tuple(ClipRecord.model_fields)
WRITER_WAIT_S = 3600.0  # an ingest commit waits out a long reader (a make) rather than drop a finished batch
_LIST_SPLIT = re.compile(r"\s*[,，、;|]\s*")


def record_from_payload(payload: dict[str, Any]) -> ClipRecord:
    """Rebuild a record from its stored payload (the computed `duration` is not an input)."""
    data = {k: v for k, v in payload.items() if k in RECORD_FIELDS}
    return ClipRecord.model_validate(data)


def _payload(rec: ClipRecord) -> dict[str, Any]:
    data = rec.model_dump(mode="json")
    data["origin"] = "generated" if rec.generated else "footage"
    return data


def _split_list(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as e:
            raise InputError(f"bad list {value!r}: {e}") from e
        return [str(x) for x in parsed]
    return [v for v in _LIST_SPLIT.split(value) if v]


def _edit_value(field: str, value: str) -> Any:
    """Turn a CLI/CSV string into the typed value of an editable field (one-line errors on bad values)."""
    if field == "content_type":
        return parse_content_type(value)
    if field == "format":
        return parse_formats(_split_list(value))
    from index.annotations import check_field

    if field in ("tags", "trend_tags"):
        return check_field(field, _split_list(value))
    return check_field(field, value)


def parse_changes(changes: dict[str, str], library: Library | None = None) -> dict[str, Any]:
    """Typed values of a human edit (`clips edit --set`), checked before any clip is read: unknown fields and bad
    values (a language not on the list) are one InputError line. A team's own word for content_type / format is
    mapped onto the taxonomy and kept as the clip's team label; with `library`, by similarity too, and a word that
    maps onto nothing must already be a team label there (index.teamlabels.require_known)."""
    from index.teamlabels import content_type_fields, format_fields, mapper_for, require_known

    unknown = [k for k in changes if k not in EDITABLE_FIELDS]
    if unknown:
        raise InputError(f"cannot edit {', '.join(unknown)}; editable fields: {', '.join(EDITABLE_FIELDS)}")
    mapper = mapper_for(library.embedder if library is not None else None)
    out: dict[str, Any] = {}
    for k, v in changes.items():
        if k in ("content_type", "format"):
            matches = [mapper.content_type(v)] if k == "content_type" else mapper.formats(_split_list(v))
            if library is not None:
                require_known(matches, library)
            out.update(content_type_fields(matches[0]) if k == "content_type" else format_fields(matches))
        else:
            out[k] = _edit_value(k, v)
    return out


class Library:
    """Clips in a Qdrant collection, embedded by one text model (+ optional CLIP)."""

    def __init__(
        self, store: ClipStore | None, embedder: TextEmbedder, image: ImageEmbedder | None, settings: Settings,
        *, lock: NamedLock | None = None, opener: Callable[[], ClipStore] | None = None,
        meta: StoreMeta | None = None,
    ) -> None:
        self._store = store
        self.embedder = embedder
        have = store.meta if store is not None else meta
        self.image = image if have is not None and have.image_model else None
        self.settings = settings
        self._lock = lock
        self._opener = opener
        self._depth = 0
        self._mutex = threading.RLock()

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        embedder: TextEmbedder | None = None,
        image_embedder: ImageEmbedder | None = None,
        backend: str | None = None,
        lazy: bool = False,
    ) -> Library:
        """Open (or create) the library under settings.home; refuses a store built with other models.

        The embedded stores admit one process at a time, so the store lock is taken first (waiting up to
        settings.store_wait_s for an ingest's commit). A `lazy` library (what ingest uses) holds the store only
        inside `batch()` or a single call, so readers can search between its commits."""
        emb = embedder or get_text_embedder(settings)
        img = image_embedder if image_embedder is not None else get_image_embedder(settings)
        meta = StoreMeta(
            text_model=emb.model_id,
            text_dim=emb.dim,
            image_model=img.model_id if img else None,
            image_dim=img.dim if img else None,
        )
        embedded = (backend or resolve_backend(settings)) != "server"
        lock = store_lock(settings.home) if embedded else None

        def opener() -> ClipStore:
            return ClipStore.open(settings, meta, backend=backend)

        if lock is not None:
            lock.acquire(settings.store_wait_s, on_wait="waiting for the clip store")
        try:
            store = opener()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        if not lazy:
            return cls(store, emb, img, settings, lock=lock)
        have = store.meta
        store.close()
        if lock is not None:
            lock.release()
        return cls(None, emb, img, settings, lock=lock, opener=opener, meta=have)

    @property
    def store(self) -> ClipStore:
        """The open store; a lazy library has one only inside `batch()`."""
        if self._store is None:
            raise StoreError("the clip store is not held; wrap the call in `with library.batch():`")
        return self._store

    @contextmanager
    def batch(self) -> Iterator[ClipStore]:
        """Hold the store for a group of calls (one commit); a no-op on a library that holds it already."""
        if self._opener is None:
            yield self.store
            return
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield self.store
                finally:
                    self._depth -= 1
                return
            if self._lock is not None:
                self._lock.acquire(WRITER_WAIT_S, on_wait="waiting for the clip store to commit")
            try:
                self._store = self._opener()
                self._depth = 1
                try:
                    yield self._store
                finally:
                    self._depth = 0
                    store, self._store = self._store, None
                    store.close()
            finally:
                if self._lock is not None:
                    self._lock.release()

    # -- writing -----------------------------------------------------------------------------------------
    def _points(self, records: list[ClipRecord]) -> list[StorePoint]:
        texts = [r.embed_text() for r in records]
        vecs = self.embedder.embed(texts)
        points = []
        for rec, text, vec in zip(records, texts, vecs, strict=True):
            img = None
            if self.image is not None and rec.keyframes:
                iv = self.image.embed_clip([Path(k) for k in rec.keyframes])
                img = iv.tolist() if iv is not None else None
            points.append(
                StorePoint(
                    id=rec.clip_id,
                    text=vec.tolist(),
                    payload=_payload(rec),
                    sparse=bm25_document(text),
                    image=img,
                )
            )
        return points

    def add(self, records: list[ClipRecord], batch: int = 64) -> None:
        """Embed and upsert; the same clip_id replaces the old point, so re-adding never duplicates. Vectors are
        computed before the store is taken, so a lazy library holds it only for the upsert."""
        points = [p for i in range(0, len(records), batch) for p in self._points(records[i : i + batch])]
        with self.batch() as store:
            store.upsert(points)

    def delete(self, ids: list[str]) -> None:
        with self.batch() as store:
            store.delete(ids)

    def optimize(self) -> None:
        """Build vector indexes after a bulk load (ingest calls it once at the end; cheap when nothing changed)."""
        with self.batch() as store:
            store.optimize()

    def edit(self, clip_id: str, changes: dict[str, str]) -> ClipRecord:
        """Human correction: set editable fields, mark them verified, re-embed."""
        update = parse_changes(changes, self)
        rec = self.get(clip_id)
        verified = list(rec.verified) + [k for k in update if k not in rec.verified]
        data = {**rec.model_dump(exclude={"duration"}), **update, "verified": verified}
        if "content_type" in changes or "format" in changes:
            data["label_source"] = "human"
        try:
            new = ClipRecord.model_validate(data)
        except ValidationError as e:
            raise InputError(f"invalid edit for clip {clip_id}: {e.errors()[0]['msg']}") from e
        self.add([new])
        return new

    # -- reading -----------------------------------------------------------------------------------------
    def get(self, clip_id: str) -> ClipRecord:
        with self.batch() as store:
            found = store.retrieve([clip_id])
        if not found:
            raise NotFoundError(f"no clip with id {clip_id}")
        return record_from_payload(found[0])

    def get_many(self, ids: list[str]) -> list[ClipRecord]:
        """Records for the ids that exist, in the order asked."""
        with self.batch() as store:
            return [record_from_payload(p) for p in store.retrieve(list(ids))]

    def resolve_id(self, prefix: str) -> str:
        """A full clip id from a unique prefix (what `clips list` shows); an empty id names no clip (it would
        be a prefix of every one)."""
        if not prefix.strip():
            raise InputError("clip id is empty; give an id or a unique prefix (see `cutpilot clips list`)")
        with self.batch() as store:
            if store.retrieve([prefix]):
                return prefix
            matches = [p["clip_id"] for p in store.scroll() if str(p["clip_id"]).startswith(prefix)]
        if len(matches) == 1:
            return str(matches[0])
        if not matches:
            raise NotFoundError(f"no clip with id {prefix}")
        raise InputError(f"clip id prefix {prefix} is ambiguous ({len(matches)} clips); give more characters")

    def ids_for_source(self, source_hash: str) -> set[str]:
        with self.batch() as store:
            return {str(p["clip_id"]) for p in store.scroll(Conditions(source_hash=source_hash))}

    def records(self, filters: SearchFilters | None = None) -> Iterator[ClipRecord]:
        cond = filters.to_conditions() if filters else None
        if self._opener is not None and not self._depth:  # a lazy library reads all, then lets the store go
            with self.batch() as store:
                payloads = list(store.scroll(cond))
            yield from (record_from_payload(p) for p in payloads)
            return
        for p in self.store.scroll(cond):
            yield record_from_payload(p)

    def count(self, filters: SearchFilters | None = None) -> int:
        with self.batch() as store:
            return store.count(filters.to_conditions() if filters else None)

    def search(
        self, query: str, filters: SearchFilters | None = None, *, image: Path | None = None, limit: int = 10
    ) -> list[SearchHit]:
        """Hybrid search; `image` adds CLIP similarity (weight settings.image_weight) when CLIP is on."""
        if image is not None and not Path(image).is_file():
            raise InputError(f"image {image} does not exist")
        with self.batch() as store:
            return hybrid_search(
                store,
                self.embedder,
                query,
                filters,
                image=image,
                image_embedder=self.image,
                image_weight=self.settings.image_weight,
                limit=limit,
            )

    # -- export / import ---------------------------------------------------------------------------------
    def export(self, path: Path) -> int:
        """Write every record to .jsonl or .csv (lossless: import_ restores the same records)."""
        path = Path(path)
        kind = _kind(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(RECORD_FIELDS)) if kind == "csv" else None
            if writer:
                writer.writeheader()
            for rec in sorted(self.records(), key=lambda r: (r.source, r.start, r.clip_id)):
                data = rec.model_dump(mode="json", exclude={"duration"})
                if writer:
                    writer.writerow({k: _csv_cell(data[k]) for k in RECORD_FIELDS})
                else:
                    f.write(json.dumps(data, ensure_ascii=False) + "\n")
                n += 1
        tmp.replace(path)
        return n

    def import_(self, path: Path) -> int:
        """Read .jsonl or .csv records; every row is validated before anything is written."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"import file {path} does not exist")
        kind = _kind(path)
        rows: list[tuple[int, dict[str, Any]]] = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            if kind == "csv":
                for i, row in enumerate(csv.DictReader(f), start=2):
                    rows.append((i, _from_csv_row(row, i)))
            else:
                rows = read_objects(f, path.name)
        records = [_to_record(data, i, path.name) for i, data in rows]
        self.add(records)
        return len(records)

    def close(self) -> None:
        """Close the store and let the lock go (idempotent)."""
        with self._mutex:
            if self._opener is None and self._store is not None:
                store, self._store = self._store, None
                try:
                    store.close()
                finally:
                    if self._lock is not None:
                        self._lock.release()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise InputError(f"{path.name}: use a .jsonl or .csv file")


# Fields whose CSV cell is plain text; every other cell is JSON (or a separated list for list fields).
_STR_FIELDS = {
    "clip_id", "source", "source_hash", "language", "transcript", "description", "content_type", "product",
    "label_source", "label_explanation", "content_type_label",
}  # fmt: skip
_OPTIONAL_STR = {"language", "product", "content_type_label"}


def _csv_cell(value: Any) -> str:
    """Strings stay as they are (readable in a spreadsheet); everything else is JSON, so nothing is lost."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _from_csv_row(row: dict[str | None, Any], line: int) -> dict[str, Any]:
    if None in row:
        raise InputError(f"CSV line {line}: more cells than header columns")
    out: dict[str, Any] = {}
    for key, cell in row.items():
        name = str(key).strip()
        if name not in RECORD_FIELDS and name != "duration":
            out[name] = cell  # reported as unknown by _to_record
            continue
        cell = cell if cell is not None else ""
        if name in _STR_FIELDS and name not in _OPTIONAL_STR:
            out[name] = cell
        elif name in _OPTIONAL_STR:
            out[name] = cell or None
        elif cell == "":
            continue  # default
        elif name in ("format", "format_labels", "tags", "trend_tags", "verified", "keyframes") \
                and not cell.lstrip().startswith("["):
            out[name] = _split_list(cell)
        else:
            try:
                out[name] = json.loads(cell)
            except json.JSONDecodeError as e:
                raise InputError(f"CSV line {line}: field {name} is not valid ({e.msg}): {cell[:40]!r}") from e
    return out


def _to_record(data: dict[str, Any], line: int, fname: str) -> ClipRecord:
    data = dict(data)
    data.pop("duration", None)
    unknown = sorted(k for k in data if k not in RECORD_FIELDS)
    if unknown:
        raise InputError(f"{fname} line {line}: unknown field(s) {', '.join(unknown)}")
    if not data.get("clip_id") and data.get("source_hash") and "start" in data and "end" in data:
        data["clip_id"] = clip_id_for(str(data["source_hash"]), float(data["start"]), float(data["end"]))
    try:
        return ClipRecord.model_validate(data)
    except InputError as e:
        raise InputError(f"{fname} line {line}: {e}") from e
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise InputError(f"{fname} line {line}: {where}: {err['msg']}") from e
