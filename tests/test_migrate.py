"""`cutpilot library migrate`: edge → local → edge round trip (counts, vectors, payloads), resume after a kill,
one-line errors, and the cluster settings a server collection is created with (through qdrant-client's code path,
local mode standing in for a server)."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path
from typing import Any, ClassVar

import pytest
from qdrant_client import QdrantClient as _RealClient

from cutpilot.cli import main
from cutpilot.errors import InputError, NotFoundError, StoreError
from cutpilot.settings import Settings
from index.embed import HashEmbedder
from index.library import Library
from index.migrate import Endpoint, checkpoint_path, migrate, parse_url
from index.store import ClipStore, StoreMeta, StorePoint, collection_options
from tests._library_data import all_records

META = StoreMeta(text_model="hash:16", text_dim=16, image_model="tiny-clip", image_dim=8)
N = 530


def _points(n: int = N, seed: int = 7) -> list[StorePoint]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        idx = sorted(rng.sample(range(5000), 5))
        out.append(StorePoint(
            id=f"clip-{i}", text=[rng.gauss(0, 1) for _ in range(16)],
            payload={"clip_id": f"clip-{i}", "product": f"p{i % 3}", "tags": ["a", str(i)], "duration": i / 10,
                     "transcript": f"第{i}条"},
            sparse=(idx, [round(rng.random() + 0.1, 4) for _ in idx]),
            image=[rng.gauss(0, 1) for _ in range(8)] if i % 4 else None,
        ))  # fmt: skip
    return out


def _seed(home: Path, backend: str = "edge", n: int = N) -> None:
    with ClipStore.open(Settings(home=home, store_backend=backend), META) as store:
        store.upsert(_points(n))


def _dump(home: Path, backend: str) -> dict[str, StorePoint]:
    out: dict[str, StorePoint] = {}
    with ClipStore.open(Settings(home=home, store_backend=backend), None) as store:
        offset: str | None = None
        while True:
            pts, offset = store.scroll_points(offset, 100)
            out.update((p.id, p) for p in pts)
            if offset is None:
                return out


def _cos(a: Any, b: Any) -> float:
    import math

    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _assert_same(a: dict[str, StorePoint], b: dict[str, StorePoint]) -> None:
    assert a.keys() == b.keys() and len(a) == N
    for pid, p in a.items():
        q = b[pid]
        assert _cos(p.text, q.text) > 0.99999
        assert (p.image is None) == (q.image is None)
        if p.image is not None and q.image is not None:
            assert _cos(p.image, q.image) > 0.99999
        assert dict(zip(*p.sparse, strict=True)) == pytest.approx(dict(zip(*q.sparse, strict=True)))
        assert p.payload == q.payload


def test_round_trip_edge_local_edge(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _seed(a)
    s = Settings(home=a)
    seen: list[tuple[int, int]] = []
    r1 = migrate(s, Endpoint("edge", str(a)), Endpoint("local", str(b)), batch=64, sample=40,
                 progress=lambda d, t: seen.append((d, t)))
    assert (r1.copied, r1.source_count, r1.target_count, r1.resumed_from) == (N, N, N, 0)
    assert r1.sampled >= 30 and r1.min_cosine > 0.9999
    assert seen[-1] == (N, N) and len(seen) >= N // 64  # progress per batch
    r2 = migrate(s, parse_url(f"local:{b}"), parse_url(f"edge:{c}"), batch=100)
    assert (r2.copied, r2.target_count) == (N, N)
    src, mid, back = _dump(a, "edge"), _dump(b, "local"), _dump(c, "edge")
    _assert_same(src, mid)
    _assert_same(src, back)
    with ClipStore.open(Settings(home=c, store_backend="edge"), None) as store:
        assert store.meta == META  # the target was created with the source's vector params
    assert not checkpoint_path(s, Endpoint("edge", str(a)), Endpoint("local", str(b))).exists()
    again = migrate(s, Endpoint("edge", str(a)), Endpoint("local", str(b)), batch=64)  # idempotent re-run
    assert (again.copied, again.target_count) == (N, N)


def test_resume_after_a_kill(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _seed(a)
    s = Settings(home=a)
    src, dst = Endpoint("edge", str(a)), Endpoint("local", str(b))
    calls = [0]

    def killer(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] == 4:  # after three batches were copied and checkpointed
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(s, src, dst, batch=50, progress=killer)
    cp = json.loads(checkpoint_path(s, src, dst).read_text())
    assert cp["copied"] == 150 and cp["offset"]
    res = migrate(s, src, dst, batch=50)
    assert res.resumed_from == 150 and res.copied == N - 150
    assert res.target_count == N and res.source_count == N
    _assert_same(_dump(a, "edge"), _dump(b, "local"))
    assert not checkpoint_path(s, src, dst).exists()


def test_cli_migrates_the_home_library(_isolated_home: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with Library.open(Settings(home=_isolated_home), embedder=HashEmbedder(64)) as lib:
        lib.add(all_records())
    out = tmp_path / "team"
    capsys.readouterr()
    assert main(["library", "migrate", "--to", f"local:{out}", "--json", "--batch", "5"]) == 0
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert res["copied"] == res["target_count"] == len(all_records())
    assert f"copied {len(all_records())}/{len(all_records())}" in cap.err
    with Library.open(Settings(home=out, store_backend="local"), embedder=HashEmbedder(64)) as lib:
        assert lib.count() == len(all_records())
        assert lib.get(all_records()[0].clip_id) == all_records()[0]
        assert lib.search("侧睡 细纹 哑铃", limit=1)[0].clip.clip_id == all_records()[0].clip_id
    assert main(["library", "migrate", "--from", f"local:{out}"]) == 0  # back into the home's edge store
    assert "migrated" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("url", ["ftp://x", "edge:", "qdrant", "http://", "http://h:notaport"])
def test_bad_url_is_one_line(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="bad store URL"):
        parse_url(url)
    assert main(["library", "migrate", "--to", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad store URL" in err


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], _isolated_home: Path) -> None:
    s = Settings(home=tmp_path / "a")
    with pytest.raises(NotFoundError, match="no clip library"):
        migrate(s, Endpoint("edge", str(tmp_path / "a")), Endpoint("local", str(tmp_path / "b")))
    _seed(tmp_path / "a", n=20)
    with pytest.raises(InputError, match="same store"):
        migrate(s, parse_url(f"edge:{tmp_path / 'a'}"), parse_url(f"edge:{tmp_path / 'a'}"))
    other = StoreMeta(text_model="hash:32", text_dim=32)
    ClipStore.open(Settings(home=tmp_path / "c", store_backend="local"), other).close()
    with pytest.raises(StoreError, match="other vector params"):
        migrate(s, Endpoint("edge", str(tmp_path / "a")), Endpoint("local", str(tmp_path / "c")))
    _seed(_isolated_home, n=5)
    capsys.readouterr()
    url = f"http://127.0.0.1:{_free_port()}"
    assert main(["library", "migrate", "--to", url]) == 5
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"Qdrant server {url}" in err
    assert main(["library", "migrate"]) == 2


class _Recorder:
    """A qdrant-client stand-in for a server: local in-memory mode, recording what create_collection is given."""

    created: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self._c = _RealClient(":memory:")

    def create_collection(self, name: str, **kwargs: Any) -> Any:
        type(self).created.append(kwargs)
        return self._c.create_collection(name, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)


def test_cluster_settings_reach_the_server_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    import qdrant_client

    cluster = Settings(store_backend="server", qdrant_url="http://qdrant-0:6333", qdrant_shards=6,
                       qdrant_replication=2, qdrant_write_consistency=1, qdrant_on_disk_payload=True)
    want = {"shard_number": 6, "replication_factor": 2, "write_consistency_factor": 1, "on_disk_payload": True}
    assert collection_options(cluster) == want
    assert collection_options(Settings()) == {}
    monkeypatch.setattr(qdrant_client, "QdrantClient", _Recorder)
    _Recorder.created.clear()
    with ClipStore.open(cluster, META) as store:
        store.upsert(_points(10))
        assert store.count() == 10 and store.backend == "server"
    assert _Recorder.created and all(_Recorder.created[0][k] == v for k, v in want.items())
    with ClipStore.open(Settings(home=Path("unused"), store_backend="server", qdrant_url="http://q:6333"), META):
        pass
    assert not {"shard_number", "replication_factor"} & set(_Recorder.created[-1])  # server defaults when unset


def test_migrate_to_a_server_through_the_client_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qdrant_client

    shared = _RealClient(":memory:")

    class _Server(_Recorder):
        def __init__(self, **kwargs: Any) -> None:
            self._c = shared

        def close(self) -> None:  # one in-memory "server" outlives each connection
            pass

    monkeypatch.setattr(qdrant_client, "QdrantClient", _Server)
    _seed(tmp_path / "a", n=120)
    s = Settings(home=tmp_path / "a", qdrant_shards=2, qdrant_replication=2)
    res = migrate(s, Endpoint("edge", str(tmp_path / "a")), parse_url("http://qdrant-0:6333/"), batch=32)
    assert (res.copied, res.target_count, res.target) == (120, 120, "http://qdrant-0:6333")
    assert shared.count("clips").count == 120
