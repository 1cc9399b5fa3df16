"""ClipStore: the only module that touches Qdrant (qdrant_client and qdrant_edge).

Three backends behind one small interface so behaviour is identical everywhere:
- `edge`: Qdrant Edge, the Qdrant engine in-process (embedded default, chosen by benchmarks/search.py);
- `local`: qdrant-client's local on-disk mode (the pure-Python baseline);
- `server`: qdrant-client against `QDRANT_URL` — the *same* client code as `local`, only the connection differs.

Each point has named dense vectors `text` (and `image` when a CLIP model is configured), a sparse `bm25`
vector (IDF applied by the engine), and a payload with the full clip record plus indexed filter fields.
The collection records the embedding model ids and dims and refuses to open with different ones, so a
library never mixes vector spaces.
"""

from __future__ import annotations

import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cutpilot.errors import NotFoundError, StoreError
from cutpilot.settings import Settings

TEXT, IMAGE, SPARSE = "text", "image", "bm25"
KEYWORD_FIELDS = ("product", "content_type", "format", "tags", "source_hash", "clip_id", "origin",
                  "content_type_label", "format_labels")
FLOAT_FIELDS = ("duration",)
# Generated clips are told apart by the keyword `origin` ("generated" | "footage"): Qdrant Edge 0.9 does not
# match booleans through a bool index, and one keyword works the same on every backend.
BOOL_FIELDS: tuple[str, ...] = ()
STORE_SCHEMA = 1
EMBEDDED_DEFAULT = "edge"  # measured in benchmarks/search.py, see BENCHMARKS.md "## Search"


class StoreMeta(BaseModel):
    """What the collection's vectors mean; recorded at creation and checked on every open."""

    schema_version: int = STORE_SCHEMA
    text_model: str
    text_dim: int
    image_model: str | None = None
    image_dim: int | None = None
    sparse_model: str = "bm25"


@dataclass
class StorePoint:
    """One point to upsert. `sparse` is (indices, values) of the keyword vector."""

    id: str
    text: Sequence[float]
    payload: dict[str, Any]
    sparse: tuple[list[int], list[float]] = ((), ())  # type: ignore[assignment]
    image: Sequence[float] | None = None


@dataclass
class Conditions:
    """Backend-neutral payload filter: every set field must hold."""

    product: str | None = None
    content_types: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    content_type_labels: list[str] = field(default_factory=list)  # OR-ed with content_types
    format_labels: list[str] = field(default_factory=list)  # OR-ed with formats
    tags: list[str] = field(default_factory=list)
    min_dur: float | None = None
    max_dur: float | None = None
    exclude_ids: list[str] = field(default_factory=list)
    include_generated: bool = True
    source_hash: str | None = None

    def empty(self) -> bool:
        return self == Conditions()


@dataclass
class VectorQuery:
    """One ranked list to compute: nearest points by the named vector."""

    using: str
    dense: Sequence[float] | Any = None  # list or numpy row
    sparse: tuple[list[int], list[float]] | None = None


def point_id(clip_id: str) -> str:
    """Qdrant wants uuids (or ints) as ids; clip ids are uuid5 strings already, anything else is mapped."""
    try:
        return str(uuid.UUID(clip_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, clip_id))


# ---------------------------------------------------------------------------------------------------------
# qdrant-client backend (local on-disk mode and server share this code)
# ---------------------------------------------------------------------------------------------------------


def collection_options(settings: Settings) -> dict[str, Any]:
    """Cluster layout of a collection the server backend creates; unset fields keep the server's defaults."""
    opts = {
        "shard_number": settings.qdrant_shards,
        "replication_factor": settings.qdrant_replication,
        "write_consistency_factor": settings.qdrant_write_consistency,
        "on_disk_payload": settings.qdrant_on_disk_payload,
    }
    return {k: v for k, v in opts.items() if v is not None}


class _ClientBackend:
    def __init__(
        self, client: Any, collection: str, meta: StoreMeta | None, create_opts: dict[str, Any] | None = None
    ) -> None:
        from qdrant_client import models as m

        self.m = m
        self.client = client
        self.collection = collection
        self.create_opts = create_opts or {}
        self.meta = self._ensure(meta)

    def _ensure(self, meta: StoreMeta | None) -> StoreMeta:
        m = self.m
        if self.client.collection_exists(self.collection):
            info = self.client.get_collection(self.collection)
            stored = (info.config.metadata or {}).get("cutpilot")
            if stored is None:
                raise StoreError(f"collection {self.collection!r} was not created by cutpilot; use another name")
            return StoreMeta.model_validate(stored)
        if meta is None:
            raise NotFoundError(f"no collection {self.collection!r} there")
        vectors = {TEXT: m.VectorParams(size=meta.text_dim, distance=m.Distance.COSINE)}
        if meta.image_dim:
            vectors[IMAGE] = m.VectorParams(size=meta.image_dim, distance=m.Distance.COSINE)
        self.client.create_collection(
            self.collection,
            vectors_config=vectors,
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            metadata={"cutpilot": meta.model_dump()},
            **self.create_opts,
        )
        schema = [(n, m.PayloadSchemaType.KEYWORD) for n in KEYWORD_FIELDS]
        schema += [(n, m.PayloadSchemaType.FLOAT) for n in FLOAT_FIELDS]
        schema += [(n, m.PayloadSchemaType.BOOL) for n in BOOL_FIELDS]
        with warnings.catch_warnings():  # local mode says indexes are no-ops there; the server uses them
            warnings.simplefilter("ignore", UserWarning)
            for name, kind in schema:
                self.client.create_payload_index(self.collection, name, kind)
        return meta

    def _filter(self, c: Conditions | None) -> Any:
        if c is None or c.empty():
            return None
        m = self.m
        must: list[Any] = []
        must_not: list[Any] = []
        if c.product:
            must.append(m.FieldCondition(key="product", match=m.MatchValue(value=c.product)))
        if c.source_hash:
            must.append(m.FieldCondition(key="source_hash", match=m.MatchValue(value=c.source_hash)))
        for pairs in ((("content_type", c.content_types), ("content_type_label", c.content_type_labels)),
                      (("format", c.formats), ("format_labels", c.format_labels))):
            anyof = [m.FieldCondition(key=k, match=m.MatchAny(any=list(v))) for k, v in pairs if v]
            if anyof:
                must.append(anyof[0] if len(anyof) == 1 else m.Filter(should=anyof))
        if c.tags:
            must.append(m.FieldCondition(key="tags", match=m.MatchAny(any=list(c.tags))))
        if c.min_dur is not None or c.max_dur is not None:
            must.append(m.FieldCondition(key="duration", range=m.Range(gte=c.min_dur, lte=c.max_dur)))
        if c.exclude_ids:
            must_not.append(m.HasIdCondition(has_id=[point_id(i) for i in c.exclude_ids]))
        if not c.include_generated:
            must_not.append(m.FieldCondition(key="origin", match=m.MatchValue(value="generated")))
        return m.Filter(must=must or None, must_not=must_not or None)

    def upsert(self, points: list[StorePoint]) -> None:
        m = self.m
        out = []
        for p in points:
            vec: dict[str, Any] = {
                TEXT: list(map(float, p.text)),
                SPARSE: m.SparseVector(indices=list(p.sparse[0]), values=list(p.sparse[1])),
            }
            if p.image is not None:
                vec[IMAGE] = list(map(float, p.image))
            out.append(m.PointStruct(id=point_id(p.id), vector=vec, payload=p.payload))
        self.client.upsert(self.collection, points=out, wait=True)

    def retrieve(self, ids: list[str]) -> list[dict[str, Any]]:
        recs = self.client.retrieve(self.collection, ids=[point_id(i) for i in ids], with_payload=True)
        return [r.payload for r in recs if r.payload]

    def delete(self, ids: list[str]) -> None:
        m = self.m
        self.client.delete(self.collection, points_selector=m.PointIdsList(points=[point_id(i) for i in ids]))

    def scroll(self, c: Conditions | None, batch: int) -> Iterator[dict[str, Any]]:
        offset = None
        flt = self._filter(c)
        while True:
            recs, offset = self.client.scroll(
                self.collection, scroll_filter=flt, limit=batch, offset=offset, with_payload=True
            )
            for r in recs:
                if r.payload:
                    yield r.payload
            if offset is None:
                return

    def count(self, c: Conditions | None) -> int:
        return int(self.client.count(self.collection, count_filter=self._filter(c), exact=True).count)

    def scroll_points(self, offset: str | None, batch: int) -> tuple[list[StorePoint], str | None]:
        recs, nxt = self.client.scroll(self.collection, limit=batch, offset=offset, with_payload=True,
                                       with_vectors=True)
        return [_store_point(r) for r in recs], (str(nxt) if nxt is not None else None)

    def retrieve_points(self, ids: list[str]) -> list[StorePoint]:
        recs = self.client.retrieve(self.collection, ids=ids, with_payload=True, with_vectors=True)
        return [_store_point(r) for r in recs]

    def query(self, queries: list[VectorQuery], c: Conditions | None, limit: int) -> list[list[tuple[str, float]]]:
        m = self.m
        flt = self._filter(c)
        reqs = []
        for q in queries:
            vec: Any = (
                m.SparseVector(indices=list(q.sparse[0]), values=list(q.sparse[1]))
                if q.sparse is not None
                else list(map(float, q.dense if q.dense is not None else []))
            )
            reqs.append(m.QueryRequest(query=vec, using=q.using, filter=flt, limit=limit, with_payload=False))
        res = self.client.query_batch_points(self.collection, requests=reqs)
        return [[(str(p.id), float(p.score)) for p in r.points] for r in res]

    def close(self) -> None:
        self.client.close()


# ---------------------------------------------------------------------------------------------------------
# Qdrant Edge backend (the Qdrant engine in-process)
# ---------------------------------------------------------------------------------------------------------


class _EdgeBackend:
    def __init__(self, root: Path, meta: StoreMeta | None) -> None:
        import qdrant_edge as qe

        self.qe = qe
        self.root = root
        self.shard_dir = root / "shard"
        meta_path = root / "meta.json"
        if meta_path.exists() and self.shard_dir.exists():
            try:
                self.meta = StoreMeta.model_validate_json(meta_path.read_text())
            except ValueError as e:
                raise StoreError(f"unreadable store metadata {meta_path}: {e}") from e
            try:
                self.shard = qe.EdgeShard.load(str(self.shard_dir))
            except Exception as e:
                raise StoreError(f"cannot open the clip store at {self.shard_dir}: {e}") from e
            return
        if meta is None:
            raise NotFoundError(f"no clip store at {root}")
        if self.shard_dir.exists():  # a half-created store (killed before meta.json): start it again
            shutil.rmtree(self.shard_dir)
        root.mkdir(parents=True, exist_ok=True)
        vectors = {TEXT: qe.EdgeVectorParams(size=meta.text_dim, distance=qe.Distance.Cosine)}
        if meta.image_dim:
            vectors[IMAGE] = qe.EdgeVectorParams(size=meta.image_dim, distance=qe.Distance.Cosine)
        config = qe.EdgeConfig(
            vectors=vectors, sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}
        )
        try:
            self.shard = qe.EdgeShard.create(str(self.shard_dir), config)
        except Exception as e:
            raise StoreError(f"cannot create the clip store at {self.shard_dir}: {e}") from e
        U, T = qe.UpdateOperation, qe.PayloadSchemaType
        for name in KEYWORD_FIELDS:
            self.shard.update(U.create_field_index(name, T.Keyword))
        for name in FLOAT_FIELDS:
            self.shard.update(U.create_field_index(name, T.Float))
        for name in BOOL_FIELDS:
            self.shard.update(U.create_field_index(name, T.Bool))
        self.shard.flush()
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(meta.model_dump_json(indent=2))
        tmp.replace(meta_path)  # meta.json last: its presence means the store is complete
        self.meta = meta

    def _filter(self, c: Conditions | None) -> Any:
        if c is None or c.empty():
            return None
        qe = self.qe
        must: list[Any] = []
        must_not: list[Any] = []
        if c.product:
            must.append(qe.FieldCondition(key="product", match=qe.MatchValue(c.product)))
        if c.source_hash:
            must.append(qe.FieldCondition(key="source_hash", match=qe.MatchValue(c.source_hash)))
        for pairs in ((("content_type", c.content_types), ("content_type_label", c.content_type_labels)),
                      (("format", c.formats), ("format_labels", c.format_labels))):
            anyof = [qe.FieldCondition(key=k, match=qe.MatchAny(list(v))) for k, v in pairs if v]
            if anyof:
                must.append(anyof[0] if len(anyof) == 1 else qe.Filter(should=anyof))
        if c.tags:
            must.append(qe.FieldCondition(key="tags", match=qe.MatchAny(list(c.tags))))
        if c.min_dur is not None or c.max_dur is not None:
            must.append(qe.FieldCondition(key="duration", range=qe.RangeFloat(gte=c.min_dur, lte=c.max_dur)))
        if c.exclude_ids:
            must_not.append(qe.HasIdCondition({point_id(i) for i in c.exclude_ids}))
        if not c.include_generated:
            must_not.append(qe.FieldCondition(key="origin", match=qe.MatchValue("generated")))
        return qe.Filter(must=must or None, must_not=must_not or None)

    def upsert(self, points: list[StorePoint]) -> None:
        qe = self.qe
        out = []
        for p in points:
            vec: dict[str, Any] = {
                TEXT: list(map(float, p.text)),
                SPARSE: qe.SparseVector(list(p.sparse[0]), list(p.sparse[1])),
            }
            if p.image is not None:
                vec[IMAGE] = list(map(float, p.image))
            out.append(qe.Point(point_id(p.id), vec, p.payload))
        self.shard.update(qe.UpdateOperation.upsert_points(out))

    def retrieve(self, ids: list[str]) -> list[dict[str, Any]]:
        recs = self.shard.retrieve([point_id(i) for i in ids], with_payload=True, with_vector=False)
        return [r.payload for r in recs if r.payload]

    def delete(self, ids: list[str]) -> None:
        self.shard.update(self.qe.UpdateOperation.delete_points([point_id(i) for i in ids]))

    def scroll(self, c: Conditions | None, batch: int) -> Iterator[dict[str, Any]]:
        offset: Any = None
        flt = self._filter(c)
        while True:
            recs, offset = self.shard.scroll(
                self.qe.ScrollRequest(offset=offset, limit=batch, filter=flt, with_payload=True, with_vector=False)
            )
            for r in recs:
                if r.payload:
                    yield r.payload
            if offset is None:
                return

    def count(self, c: Conditions | None) -> int:
        return int(self.shard.count(self.qe.CountRequest(exact=True, filter=self._filter(c))))

    def scroll_points(self, offset: str | None, batch: int) -> tuple[list[StorePoint], str | None]:
        recs, nxt = self.shard.scroll(
            self.qe.ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=True)
        )
        return [_store_point(r) for r in recs], (str(nxt) if nxt is not None else None)

    def retrieve_points(self, ids: list[str]) -> list[StorePoint]:
        wanted: list[int | uuid.UUID | str] = list(ids)
        return [_store_point(r) for r in self.shard.retrieve(wanted, with_payload=True, with_vector=True)]

    def query(self, queries: list[VectorQuery], c: Conditions | None, limit: int) -> list[list[tuple[str, float]]]:
        qe = self.qe
        flt = self._filter(c)
        reqs = []
        for q in queries:
            vec: Any = (
                qe.SparseVector(list(q.sparse[0]), list(q.sparse[1]))
                if q.sparse is not None
                else list(map(float, q.dense if q.dense is not None else []))
            )
            reqs.append(
                qe.QueryRequest(limit=limit, query=qe.Query.Nearest(vec, using=q.using), filter=flt, with_payload=False)
            )
        res = self.shard.query_batch(qe.QueryBatchRequest(reqs))
        return [[(str(p.id), float(p.score)) for p in r] for r in res]

    def optimize(self) -> None:
        self.shard.optimize()

    def close(self) -> None:
        self.shard.flush()
        self.shard.close()


# ---------------------------------------------------------------------------------------------------------
# The facade
# ---------------------------------------------------------------------------------------------------------


def resolve_backend(settings: Settings) -> str:
    """`auto` means the server when QDRANT_URL is set, else the measured embedded default."""
    b = settings.store_backend.strip().lower()
    if b == "auto":
        return "server" if settings.qdrant_url else EMBEDDED_DEFAULT
    if b not in ("edge", "local", "server"):
        raise StoreError(f"unknown store backend {settings.store_backend!r}; use auto, edge, local or server")
    return b


def store_path(settings: Settings, backend: str) -> Path:
    """Where an embedded backend keeps its files under CUTPILOT_HOME."""
    return settings.home / "store" / backend / settings.collection


class ClipStore:
    """Qdrant collection of clips: upsert / retrieve / scroll / count / delete and batched vector queries."""

    def __init__(self, backend: _ClientBackend | _EdgeBackend, name: str, wanted: StoreMeta | None) -> None:
        self._b = backend
        self.backend = name
        self.meta = backend.meta
        if wanted is not None:
            self._check(wanted)

    def _check(self, wanted: StoreMeta) -> None:
        have = self.meta
        if (have.text_model, have.text_dim) != (wanted.text_model, wanted.text_dim):
            self._b.close()
            raise StoreError(
                f"the library was embedded with text model {have.text_model} ({have.text_dim}-d) but "
                f"{wanted.text_model} ({wanted.text_dim}-d) is configured; set CUTPILOT_TEXT_EMBEDDER back, "
                "or use another CUTPILOT_HOME/collection and re-import an export"
            )
        if wanted.image_model and (have.image_model, have.image_dim) != (wanted.image_model, wanted.image_dim):
            self._b.close()
            raise StoreError(
                f"the library's image vectors are {have.image_model or 'absent'} but CLIP model "
                f"{wanted.image_model} is configured; unset CUTPILOT_CLIP_MODEL, or use another "
                "CUTPILOT_HOME/collection and re-import an export"
            )

    @classmethod
    def open(cls, settings: Settings, meta: StoreMeta | None, *, backend: str | None = None) -> ClipStore:
        """Open (creating on first use) the collection for `settings`, refusing foreign vector spaces.

        `meta=None` opens an existing collection whatever its vectors are (NotFoundError when there is none):
        what a migration reads from."""
        name = backend or resolve_backend(settings)
        impl: _ClientBackend | _EdgeBackend
        if name == "edge":
            impl = _EdgeBackend(store_path(settings, "edge"), meta)
        elif name in ("local", "server"):
            try:
                from qdrant_client import QdrantClient
            except ImportError as e:  # pragma: no cover - hard dependency
                raise StoreError("qdrant-client is not installed") from e
            if name == "server":
                if not settings.qdrant_url:
                    raise StoreError("store backend 'server' needs QDRANT_URL")
                # the client's version check runs in a thread and warns when the server is unreachable; that case
                # is reported below as one error line (an incompatible version still warns)
                warnings.filterwarnings("ignore", message="Failed to obtain server version", category=UserWarning)
                client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30)
            else:
                path = store_path(settings, "local").parent
                path.mkdir(parents=True, exist_ok=True)
                try:
                    client = QdrantClient(path=str(path))
                except RuntimeError as e:  # the directory is locked by another process
                    raise StoreError(f"the clip store at {path} is in use by another process: {e}") from e
            opts = collection_options(settings) if name == "server" else {}
            try:
                impl = _ClientBackend(client, settings.collection, meta, opts)
            except (StoreError, NotFoundError):
                client.close()
                raise
            except Exception as e:
                client.close()
                where = f" on the Qdrant server {settings.qdrant_url}" if name == "server" else ""
                raise StoreError(f"cannot open collection {settings.collection!r}{where}: {e}") from e
        else:
            raise StoreError(f"unknown store backend {name!r}")
        return cls(impl, name, meta)

    # -- data --------------------------------------------------------------------------------------------
    def upsert(self, points: list[StorePoint], batch: int = 256) -> None:
        for i in range(0, len(points), batch):
            self._b.upsert(points[i : i + batch])

    def retrieve(self, ids: list[str]) -> list[dict[str, Any]]:
        """Payloads of the given ids, in the given order; missing ids are skipped."""
        if not ids:
            return []
        by_id = {point_id(str(p.get("clip_id"))): p for p in self._b.retrieve(ids)}
        return [by_id[point_id(i)] for i in ids if point_id(i) in by_id]

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._b.delete(ids)

    def scroll(self, conditions: Conditions | None = None, batch: int = 256) -> Iterator[dict[str, Any]]:
        return self._b.scroll(conditions, batch)

    def count(self, conditions: Conditions | None = None) -> int:
        return self._b.count(conditions)

    def scroll_points(self, offset: str | None = None, batch: int = 256) -> tuple[list[StorePoint], str | None]:
        """One page of whole points (every named vector and the payload) in id order, and the next page's offset:
        what a migration copies, resuming from a saved offset."""
        return self._b.scroll_points(offset, batch)

    def retrieve_points(self, ids: list[str]) -> list[StorePoint]:
        """Whole points (vectors included) by point id; missing ids are skipped."""
        return self._b.retrieve_points([point_id(i) for i in ids]) if ids else []

    def query(
        self, queries: list[VectorQuery], conditions: Conditions | None = None, limit: int = 50
    ) -> list[list[tuple[str, float]]]:
        """One ranked (payload clip_id-free) list of (point id, score) per query, all under the same filter."""
        if not queries:
            return []
        return self._b.query(queries, conditions, limit)

    def optimize(self) -> None:
        """Build indexes after a bulk load (Edge runs its optimizers in-process; the client does it itself)."""
        if isinstance(self._b, _EdgeBackend):
            self._b.optimize()

    def close(self) -> None:
        self._b.close()

    def __enter__(self) -> ClipStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _store_point(r: Any) -> StorePoint:
    """A retrieved or scrolled point (either backend's record shape) with its vectors, as migrate moves it."""
    vec = r.vector or {}
    sp = vec.get(SPARSE)
    sparse = (list(sp.indices), list(sp.values)) if sp is not None else ([], [])
    return StorePoint(id=str(r.id), text=vec.get(TEXT) or [], payload=r.payload or {}, sparse=sparse,
                      image=vec.get(IMAGE))
