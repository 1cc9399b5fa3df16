"""`cutpilot library migrate`: copy a clip collection between stores (Qdrant Edge, qdrant-client local, a server).

A team outgrows the embedded store by moving its library to a Qdrant server (and back, for a laptop copy). Points
are copied whole — every named vector (`text`, `image` when present, sparse `bm25`) and the payload — in id order
by scroll + upsert, so an interrupted run continues from the offset in its checkpoint file and an upsert repeated
after a crash rewrites the same point id instead of adding one. The copy is verified before the checkpoint is
dropped: counts, and the vectors and payloads of a random sample of points (cosine ≈ 1 on every dense vector).
No embedder is loaded: vectors move as they are, so the target needs the same vector params as the source.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel

from cutpilot import atomic
from cutpilot.errors import InputError, NotFoundError, StoreError
from cutpilot.settings import Settings
from index.lock import store_lock
from index.store import ClipStore, StoreMeta, StorePoint, resolve_backend

Kind = Literal["edge", "local", "server"]
URL_HELP = "edge:<home dir>, local:<home dir> or http(s)://host:port (a Qdrant server)"
MIN_COSINE = 0.9999


@dataclass(frozen=True)
class Endpoint:
    """One side of a migration: a backend and where it lives (a CUTPILOT_HOME dir, or a server URL)."""

    kind: Kind
    where: str

    def __str__(self) -> str:
        return self.where if self.kind == "server" else f"{self.kind}:{self.where}"


def parse_url(url: str) -> Endpoint:
    """`edge:<home>` | `local:<home>` | `http(s)://host[:port]`; anything else is one InputError line."""
    text = url.strip()
    scheme, sep, rest = text.partition(":")
    if sep and scheme in ("edge", "local"):
        if not rest.strip():
            raise InputError(f"bad store URL {url!r}: {scheme}: needs a home directory; use {URL_HELP}")
        return Endpoint(scheme, str(Path(rest.strip()).expanduser().resolve()))  # type: ignore[arg-type]
    if scheme in ("http", "https"):
        try:
            parsed = urlparse(text)
            port = parsed.port
        except ValueError as e:
            raise InputError(f"bad store URL {url!r}: {e}; use {URL_HELP}") from e
        if not parsed.hostname:
            raise InputError(f"bad store URL {url!r}: no host; use {URL_HELP}")
        netloc = parsed.hostname + (f":{port}" if port else "")
        return Endpoint("server", f"{parsed.scheme}://{netloc}{parsed.path.rstrip('/')}")
    raise InputError(f"bad store URL {url!r}; use {URL_HELP}")


def home_endpoint(settings: Settings) -> Endpoint:
    """The store this home is configured to use (CUTPILOT_STORE_BACKEND / QDRANT_URL)."""
    kind = resolve_backend(settings)
    if kind == "server":
        return Endpoint("server", parse_url(settings.qdrant_url or "").where)
    return Endpoint(kind, str(settings.home.expanduser().resolve()))  # type: ignore[arg-type]


def _settings_for(settings: Settings, ep: Endpoint) -> Settings:
    if ep.kind == "server":
        return settings.model_copy(update={"store_backend": "server", "qdrant_url": ep.where})
    return settings.model_copy(update={"store_backend": ep.kind, "home": Path(ep.where)})


class Checkpoint(BaseModel):
    """How far a migration got: the next scroll offset (None before the first page) and points copied so far."""

    source: str
    target: str
    collection: str
    offset: str | None = None
    copied: int = 0
    updated: float = 0.0


class MigrateResult(BaseModel):
    source: str
    target: str
    copied: int
    resumed_from: int
    source_count: int
    target_count: int
    sampled: int
    min_cosine: float
    wall_s: float


def checkpoint_path(settings: Settings, src: Endpoint, dst: Endpoint) -> Path:
    key = hashlib.sha1(f"{src}\n{dst}\n{settings.collection}".encode()).hexdigest()[:16]
    return settings.path("migrate", f"{key}.json")


def _vector_params(meta: StoreMeta) -> dict[str, Any]:
    return {"text": f"{meta.text_model} ({meta.text_dim}-d)",
            "image": f"{meta.image_model} ({meta.image_dim}-d)" if meta.image_dim else None,
            "sparse": meta.sparse_model}  # fmt: skip


def _open(settings: Settings, ep: Endpoint, meta: StoreMeta | None) -> ClipStore:
    return ClipStore.open(_settings_for(settings, ep), meta, backend=ep.kind)


def _open_target(settings: Settings, dst: Endpoint, meta: StoreMeta) -> ClipStore:
    """The target collection, created with the source's vector params; an existing one must have the same."""
    try:
        store = _open(settings, dst, None)
    except NotFoundError:
        return _open(settings, dst, meta)
    have, want = _vector_params(store.meta), _vector_params(meta)
    if have != want:
        store.close()
        diff = "; ".join(f"{k}: {have[k]} there, {want[k]} in the source" for k in have if have[k] != want[k])
        raise StoreError(f"collection {settings.collection!r} at {dst} has other vector params ({diff}); "
                         "migrate into another collection or home")
    return store


def _cosine(a: Any, b: Any) -> float:
    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) != len(b):
        return 0.0
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def _same_sparse(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    da = dict(zip(map(int, a[0]), map(float, a[1]), strict=True))
    db = dict(zip(map(int, b[0]), map(float, b[1]), strict=True))
    return da.keys() == db.keys() and all(math.isclose(da[k], db[k], rel_tol=1e-5, abs_tol=1e-7) for k in da)


def _sample_ids(store: ClipStore, n: int) -> list[str]:
    """Random points: point ids are uuids spread evenly, so the first id at or after a random uuid is a random
    point (no full id scan on a 7M-point collection)."""
    ids: set[str] = set()
    for _ in range(n * 2):
        if len(ids) >= n:
            break
        pts, _next = store.scroll_points(str(uuid.uuid4()), 1)
        if not pts:
            pts, _next = store.scroll_points(None, 1)
        ids.update(p.id for p in pts)
    return sorted(ids)


def verify(src: ClipStore, dst: ClipStore, sample: int) -> tuple[int, int, int, float]:
    """Counts, then vectors and payloads of `sample` random points; StoreError on any difference."""
    n_src, n_dst = src.count(), dst.count()
    if n_dst < n_src:
        raise StoreError(f"verification failed: the target holds {n_dst} points, the source {n_src}")
    ids = _sample_ids(src, sample) if sample > 0 and n_src else []
    theirs = {p.id: p for p in dst.retrieve_points(ids)}
    worst = 1.0
    for p in src.retrieve_points(ids):
        q = theirs.get(p.id)
        if q is None:
            raise StoreError(f"verification failed: point {p.id} is missing from the target")
        cos = [_cosine(p.text, q.text)]
        if (p.image is None) != (q.image is None):
            raise StoreError(f"verification failed: point {p.id} lost its image vector")
        if p.image is not None and q.image is not None:
            cos.append(_cosine(p.image, q.image))
        worst = min(worst, *cos)
        if min(cos) < MIN_COSINE:
            raise StoreError(f"verification failed: point {p.id} has cosine {min(cos):.6f} to its source vector")
        if not _same_sparse(p.sparse, q.sparse):
            raise StoreError(f"verification failed: point {p.id} has another bm25 vector")
        if json.dumps(p.payload, sort_keys=True) != json.dumps(q.payload, sort_keys=True):
            raise StoreError(f"verification failed: point {p.id} has another payload")
    return n_src, n_dst, len(ids), worst


def _load_checkpoint(path: Path, src: Endpoint, dst: Endpoint, collection: str) -> Checkpoint | None:
    if not path.is_file():
        return None
    try:
        cp = Checkpoint.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:
        return None  # unreadable: start again, the upserts are idempotent
    return cp if (cp.source, cp.target, cp.collection) == (str(src), str(dst), collection) else None


def migrate(
    settings: Settings, src: Endpoint, dst: Endpoint, *, batch: int = 256, sample: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> MigrateResult:  # fmt: skip
    """Copy every point of `settings.collection` from `src` to `dst`, resuming a checkpoint, then verify."""
    if src == dst:
        raise InputError(f"source and target are the same store ({src})")
    if batch < 1:
        raise InputError("batch must be at least 1")
    t0 = time.perf_counter()
    locks = [store_lock(Path(ep.where)) for ep in (src, dst) if ep.kind != "server"]
    held = []
    try:
        for lock in locks:
            lock.acquire(settings.store_wait_s, on_wait="waiting for the clip store")
            held.append(lock)
        try:
            source = _open(settings, src, None)
        except NotFoundError as e:
            raise NotFoundError(f"no clip library to migrate at {src} (collection {settings.collection!r})") from e
        try:
            with _open_target(settings, dst, source.meta) as target:
                result = _copy(settings, source, target, src, dst, batch, sample, progress)
        finally:
            source.close()
    finally:
        for lock in reversed(held):
            lock.release()
    result.wall_s = round(time.perf_counter() - t0, 3)
    return result


def _copy(
    settings: Settings, source: ClipStore, target: ClipStore, src: Endpoint, dst: Endpoint, batch: int,
    sample: int, progress: Callable[[int, int], None] | None,
) -> MigrateResult:  # fmt: skip
    path = checkpoint_path(settings, src, dst)
    cp = _load_checkpoint(path, src, dst, settings.collection)
    if cp is not None and target.count() < cp.copied:
        cp = None  # the target lost points since the checkpoint (recreated?): copy everything again
    cp = cp or Checkpoint(source=str(src), target=str(dst), collection=settings.collection)
    resumed_from = cp.copied
    total = source.count()
    if progress is not None:
        progress(cp.copied, total)
    if cp.offset is not None or cp.copied == 0:
        offset = cp.offset
        while True:
            points: list[StorePoint]
            points, nxt = source.scroll_points(offset, batch)
            if points:
                target.upsert(points, batch=batch)
            cp.offset, cp.copied, cp.updated = nxt, cp.copied + len(points), time.time()
            atomic.write_text(path, cp.model_dump_json(indent=2))
            if progress is not None:
                progress(cp.copied, total)
            if nxt is None:
                break
            offset = nxt
    target.optimize()
    n_src, n_dst, n_sample, worst = verify(source, target, sample)
    path.unlink(missing_ok=True)
    return MigrateResult(source=str(src), target=str(dst), copied=cp.copied - resumed_from, resumed_from=resumed_from,
                         source_count=n_src, target_count=n_dst, sampled=n_sample, min_cosine=round(worst, 6),
                         wall_s=0.0)  # fmt: skip
