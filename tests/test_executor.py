"""The executor seam: Ray (a private 2-CPU cluster on loopback) gives the same ingest records and the same batch
storyboards/timelines as the local executor; a worker killed mid-unit is retried with nothing duplicated; a
re-run skips finished units without starting any worker."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.batch import BatchWorker, LibrarySnapshot, run_batch
from cutpilot.errors import CutpilotError, InputError, MediaError
from cutpilot.executors import open_pool, resolve
from cutpilot.settings import Settings
from index.ingest import IngestWorker, ingest
from index.library import Library

FIX = Path(__file__).parent / "fixtures" / "ingest"
WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"
SOURCES = ("kphotoalbum_talking_head.avi", "pyfeat_cartoon_then_face_hevc_5s.mov", "kivy_city_night_cc0_3s.mpg")
WINDOW = 2.0  # several windows per source, so units are source windows
BATCH = "- id: sleep\n  brief: 做一条侧睡纹广告\n  durations: [10, 15]\n  aspects: ['9:16', '1:1']\n"


class DyingIngestWorker(IngestWorker):
    """Dies (os._exit) in its first `records` call while the marker file exists."""

    def records(self, *args: Any) -> dict[str, Any]:
        marker = self.ing.settings.home / "kill-once"
        if marker.exists():
            marker.unlink()
            os._exit(1)
        return super().records(*args)


class DyingBatchWorker(BatchWorker):
    def make(self, *args: Any) -> dict[str, Any]:
        marker = self.door.settings.home / "kill-once"
        if marker.exists():
            marker.unlink()
            os._exit(1)
        return super().make(*args)


class Broken:
    def boom(self, kind: str) -> None:
        if kind == "typed":
            raise MediaError("x.mp4: broken")
        raise ValueError("a bug")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    from cutpilot.executors.ray_pool import start

    start(workers=2)
    try:
        yield
    finally:
        ray.shutdown()


def _settings(home: Path) -> Settings:
    return Settings(home=home, text_embedder="hash", whisper_model=str(WHISPER_DIR))


def _records(lib: Library, home: Path) -> dict[str, Any]:
    return {r.clip_id: json.loads(r.model_dump_json().replace(str(home), "HOME")) for r in lib.records()}


def test_resolve_names_the_choices() -> None:
    assert resolve(None, "local") == "local" and resolve("RAY") == "ray"
    with pytest.raises(InputError, match="local or ray"):
        resolve("dask")


def test_local_executor_never_imports_ray(tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; from agent.batch import run_batch; from index.ingest import ingest; "
            "import cutpilot.executors; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
def footage(tmp_path: Path) -> Path:
    d = tmp_path / "footage"
    d.mkdir()
    for name in SOURCES:
        shutil.copy(FIX / name, d / name)
    return d


@pytest.mark.slow
def test_ray_ingest_matches_local_survives_a_killed_worker_and_skips_on_rerun(
        ray_cluster: None, footage: Path, tmp_path: Path) -> None:
    local_home, ray_home = tmp_path / "local", tmp_path / "ray"
    with Library.open(_settings(local_home), lazy=True) as lib:
        local = ingest([footage], _settings(local_home), lib, progress=False, window_s=WINDOW)
        want = _records(lib, local_home)
    assert not local.failed and len(want) >= 3
    ray_home.mkdir()
    (ray_home / "kill-once").write_text("die on the first records unit")
    with Library.open(_settings(ray_home), lazy=True) as lib:
        got = ingest([footage], _settings(ray_home), lib, progress=False, window_s=WINDOW, executor="ray",
                     workers=2, worker_cls=DyingIngestWorker)
        assert not got.failed, got.rows
        assert not (ray_home / "kill-once").exists()  # the worker died once and its unit was retried
        have = _records(lib, ray_home)
        diff = {(k, f): (have[k].get(f), want[k].get(f)) for k in want if k in have for f in want[k]
                if have[k].get(f) != want[k].get(f)}
        assert have.keys() == want.keys() and not diff, diff  # same clip ids, same records
        assert lib.count() == len(want)  # nothing duplicated
        assert [r.clips for r in got.rows] == [r.clips for r in local.rows]
        assert got.workers and all(w["embedder_loads"] == 1 and w["whisper_loads"] <= 1 for w in got.workers)
        again = ingest([footage], _settings(ray_home), lib, progress=False, window_s=WINDOW, executor="ray")
        assert {r.status for r in again.rows} == {"skipped"} and again.workers == []  # no cluster work at all
        assert lib.count() == len(want)


def _diff(a: Any, b: Any, at: str = "") -> list[str]:
    """Where two JSON values differ (paths), for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{at}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{at}[{i}]")]
    return [] if a == b else [f"{at}: {a!r} != {b!r}"[:300]]


def _outputs(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    made = {}
    for r in summary["results"]:
        assert r["status"] in ("ok", "skipped"), r
        vdir = Path(r["out_dir"])
        made[r["key"]] = {f: json.loads((vdir / f).read_text(encoding="utf-8").replace(str(out.resolve()), "OUT")
                                        .replace(str(out), "OUT"))
                          for f in ("storyboard.json", "timeline.json")}
    return made


def _run(spec: Path, s: Settings, lib: Any, out: Path, **kw: Any) -> dict[str, Any]:
    return run_batch(spec, settings=s, library=lib, out_dir=out, render=False, progress=False,
                     tools=NoVoiceTools(s), **kw)


@pytest.mark.slow
def test_ray_batch_matches_local_survives_a_killed_worker_and_skips_on_rerun(ray_cluster: None,
                                                                             tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(BATCH, encoding="utf-8")
    s = _settings(tmp_path / "home")
    src = MemorySource(domain_records())  # deterministic search, so every byte of the plan must match
    local = _run(tmp_path / "b.yaml", s, src, tmp_path / "local")
    (s.home / "kill-once").write_text("die on the first variant")
    got = _run(tmp_path / "b.yaml", s, src, tmp_path / "ray", executor="ray", workers=2, worker_cls=DyingBatchWorker)
    assert not (s.home / "kill-once").exists()  # a worker died mid-batch and its variant was retried
    assert (got["ok"], got["failed"]) == (local["ok"], 0) == (4, 0)
    a, b = _outputs(got, tmp_path / "ray"), _outputs(local, tmp_path / "local")
    assert not _diff(a, b), _diff(a, b)
    assert len(list((tmp_path / "ray").glob("*/run.json"))) == 4  # nothing duplicated
    rows = (tmp_path / "ray" / "manifest.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(rows) == 1 + 4
    again = _run(tmp_path / "b.yaml", s, src, tmp_path / "ray", executor="ray")
    assert again["skipped"] == 4 and again["workers"] == []  # finished variants start no worker


@pytest.mark.slow
def test_ray_batch_over_a_real_library_plans_from_a_snapshot(ray_cluster: None, tmp_path: Path) -> None:
    """Workers search their own byte copy of the embedded store: the same plans, tie order included."""
    (tmp_path / "b.yaml").write_text(BATCH, encoding="utf-8")
    s = _settings(tmp_path / "home")
    with Library.open(s) as lib:
        lib.add(domain_records())
        local = _run(tmp_path / "b.yaml", s, lib, tmp_path / "local")
        got = _run(tmp_path / "b.yaml", s, lib, tmp_path / "ray", executor="ray", workers=2)
    assert (got["ok"], got["failed"]) == (local["ok"], 0) == (4, 0)
    a, b = _outputs(got, tmp_path / "ray"), _outputs(local, tmp_path / "local")
    assert not _diff(a, b), _diff(a, b)


def test_snapshot_of_a_memory_source_is_the_source_and_of_a_store_a_byte_copy(tmp_path: Path) -> None:
    src = MemorySource(domain_records())
    assert LibrarySnapshot(src).open(_settings(tmp_path / "h")) is src
    s = _settings(tmp_path / "home")
    with Library.open(s) as lib:
        lib.add(domain_records())
        snap = LibrarySnapshot(lib)
        want = sorted(r.clip_id for r in lib.records())
    copy = snap.open(s)  # the home's store is closed; the copy lives in its own folder
    try:
        assert sorted(r.clip_id for r in copy.records()) == want and snap.archive
        hits = copy.search("睡觉 细纹", limit=3)
        with Library.open(s) as lib:
            assert [h.clip.clip_id for h in hits] == [h.clip.clip_id for h in lib.search("睡觉 细纹", limit=3)]
    finally:
        copy.close()


@pytest.mark.slow
def test_worker_errors_arrive_typed_and_in_one_line(ray_cluster: None) -> None:
    pool = open_pool(Broken, (), workers=1)
    try:
        with pytest.raises(MediaError, match="broken"):
            pool.get(pool.submit("boom", "typed"))
        with pytest.raises(CutpilotError, match="worker failed: ValueError: a bug"):
            pool.get(pool.submit("boom", "bug"))
    finally:
        pool.close()
