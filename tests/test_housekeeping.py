"""Housekeeping: one Whisper model per machine, `cutpilot gc` removing exactly what nothing uses, `cutpilot doctor`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cutpilot.cli import main
from cutpilot.models import ClipRecord, clip_id_for
from cutpilot.outdir import claim
from cutpilot.settings import Settings, get_settings
from index import asr

REPO = Path(__file__).resolve().parent.parent
OLD = time.time() - 3600


def _counting_joins(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = shutil.copyfileobj

    def counted(src: Any, dst: Any, length: int = 0) -> None:
        calls.append(1)
        return real(src, dst, length)

    monkeypatch.setattr(asr.shutil, "copyfileobj", counted)
    return calls


def test_two_homes_share_one_whisper_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_joins(monkeypatch)
    models = tmp_path / "models"
    a = Settings(home=tmp_path / "a", models_dir=models, whisper_model=None)
    b = Settings(home=tmp_path / "b", models_dir=models, whisper_model=None)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda s=s: results.append(asr.model_dir(s))) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [models / "whisper-base"] * 2
    assert len(calls) == 2  # the two halves, once: the second home waited for the first join, not repeated it
    assert asr.model_dir(b) == models / "whisper-base" and len(calls) == 2
    assert not (a.home / "models").exists() and not (b.home / "models").exists()
    assert [p for p in models.iterdir() if p.is_dir()] == [models / "whisper-base"]  # no half join left


def test_an_older_home_keeps_its_own_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_joins(monkeypatch)
    old = Settings(home=tmp_path / "old", models_dir=tmp_path / "models", whisper_model=None)
    (old.home / "models" / "whisper-base").mkdir(parents=True)
    (old.home / "models" / "whisper-base" / "model.bin").write_bytes(b"joined earlier")
    assert asr.model_dir(old) == old.home / "models" / "whisper-base"
    assert calls == [] and not (tmp_path / "models").exists()


def test_models_dir_defaults_to_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUTPILOT_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Settings().models_dir == tmp_path / "xdg" / "cutpilot" / "models"
    monkeypatch.setenv("CUTPILOT_MODELS_DIR", str(tmp_path / "mine"))
    assert Settings().models_dir == tmp_path / "mine"


# --- a home with something of everything -------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write(p: Path, data: bytes, *, old: bool = True) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    if old:
        os.utime(p, (OLD, OLD))
    return p


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, set[Path], set[Path]]:
    """A home with a library of one source; returns (home, what gc must remove, what it must keep)."""
    home = tmp_path / "home"
    monkeypatch.setenv("CUTPILOT_HOME", str(home))
    monkeypatch.setenv("CUTPILOT_TEXT_EMBEDDER", "hash")
    get_settings.cache_clear()
    from index.library import Library

    kf = home / "keyframes"
    live = [_write(kf / "live" / f"f{n:06d}.jpg", b"j" * 300) for n in (1, 12, 24)]
    rec = ClipRecord(clip_id=clip_id_for("live", 0, 1), source="/media/a.mp4", source_hash="live", start=0, end=1,
                     keyframes=[str(p) for p in live])
    with Library.open(Settings(home=home, text_embedder="hash")) as lib:
        lib.add([rec])
    unnamed_frame = _write(kf / "live" / "f000099.jpg", b"j" * 200)  # a frame of a clip deleted since
    dead_dir = kf / "dead"
    _write(dead_dir / "f000001.jpg", b"d" * 500)
    os.utime(dead_dir, (OLD, OLD))

    cache = home / "render-cache"
    seg_ref = _write(cache / "seg-ref.mp4", b"s" * 1000)
    final_ref = _write(cache / "final-ref.mp4", b"f" * 800)
    cap_ref = _write(cache / "captions" / "cap-ref.png", b"c" * 10)
    seg_unref = _write(cache / "seg-unref.mp4", b"u" * 2000)
    card_unref = _write(cache / "cards" / "card-unref.png", b"k" * 20)
    cli_unref = _write(home / "cache" / "render" / "final-cli.mp4", b"x" * 30)
    recent = _write(cache / "seg-rendering-now.mp4", b"n" * 40, old=False)
    legacy_final = _write(cache / "final-legacy.mp4", b"L" * 640)
    legacy_meta = _write(cache / "final-legacy.json", b"{}")
    dead_tmp = _write(cache / f".seg-x.mp4~{_dead_pid()}-0123abcd.part.mp4", b"t" * 64)

    run = tmp_path / "out"
    claim(run, home)
    (run / "run.json").write_text(json.dumps({"thread_id": "t1", "render": {
        "path": str(run / "ad.mp4"), "cache_dir": str(cache),
        "cache_files": ["seg-ref.mp4", "final-ref.mp4", "final-ref.json", "captions/cap-ref.png"]}}))
    old_run = tmp_path / "batch" / "v1"  # recorded before renders named their cache files
    claim(old_run, home)
    (old_run / "run.json").write_text(json.dumps({"thread_id": "t0", "render": {"path": "ad.mp4"}}))
    (old_run / "ad.mp4").write_bytes(b"L" * 640)

    remove = {unnamed_frame, dead_dir, seg_unref, card_unref, cli_unref, dead_tmp}
    keep = {*live, seg_ref, final_ref, cap_ref, recent, legacy_final, legacy_meta, run / "run.json",
            old_run / "ad.mp4"}
    return home, remove, keep


def _files(root: Path) -> dict[Path, bytes]:
    """Every file but the store's and the locks' own (opening a store rewrites its config and segments)."""
    return {p: p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not {"store", "locks"} & set(p.relative_to(root).parts[:2])}


def _listed(text: str, verb: str) -> set[Path]:
    return {Path(m.rstrip("/")) for m in re.findall(rf"^{verb} (.+?) \([^()]*\)$", text, flags=re.M)}


def test_gc_dry_run_lists_exactly_the_unused_files_then_gc_removes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, remove, keep = _home(tmp_path, monkeypatch)
    before = _files(tmp_path)
    capsys.readouterr()

    assert main(["gc", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert _listed(text, "would remove") == remove
    assert _files(tmp_path) == before  # nothing removed
    assert "render cache: would free 2.0 KB in 3 item(s)" in text and "keyframes: would free 700 B in 2 item(s)" \
        in text and "temp files: would free 64 B in 1 item(s)" in text
    assert "kept 1 still being written or recent" in text

    t0 = time.perf_counter()
    assert main(["gc"]) == 0
    wall = time.perf_counter() - t0
    text = capsys.readouterr().out
    assert _listed(text, "removed") == remove
    assert not any(p.exists() for p in remove) and all(p.exists() for p in keep)
    gone = {p for p in before if not p.exists()}
    assert gone == {p for p in before if p in remove or p.parent in remove}  # nothing else
    assert wall < 5
    assert main(["gc", "--dry-run"]) == 0 and "would free 0 B in 0 item(s)" in capsys.readouterr().out


def _hold_store(home: Path) -> subprocess.Popen[str]:
    code = ("import sys; from pathlib import Path; from index.lock import NamedLock, STORE; "
            f"lk = NamedLock(Path({str(home)!r}), STORE); lk.acquire(0); print('held', flush=True); "
            "sys.stdin.read()")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def test_doctor_on_a_healthy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _home(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["doctor", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["healthy"] and r["problems"] == [] and r["locks"] == []
    assert r["store"] == {"collection": "clips", "backend": "edge", "text_model": "hash:64", "text_dim": 64,
                          "image_model": None, "count": 1, "state": "ok"}
    assert r["sizes"]["render-cache"] > 0 and r["sizes"]["keyframes"] > 0 and r["sizes"]["store"] > 0
    assert r["sizes"]["outputs"] > 0 and r["models"]["ffmpeg"]["version"].startswith("ffmpeg version")
    assert r["models"]["whisper"]["path"] == str(Settings().models_dir / "whisper-base")
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "store: edge/clips ok, 1 clip(s), text hash:64 (64-d)" in text and text.rstrip().endswith("healthy")
    assert len(text.splitlines()) <= 24


def test_doctor_and_gc_on_a_home_whose_store_another_process_holds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    home, remove, _ = _home(tmp_path, monkeypatch)
    holder = _hold_store(home)
    try:
        capsys.readouterr()
        t0 = time.perf_counter()
        assert main(["doctor", "--json"]) == 0
        assert time.perf_counter() - t0 < 3  # reported, not waited for
        r = json.loads(capsys.readouterr().out)
        assert r["store"]["state"] == "locked" and f"pid {holder.pid}" in r["store"]["holder"]
        assert [(lk["lock"], lk["pid"]) for lk in r["locks"]] == [("store.lock", holder.pid)]
        assert main(["doctor"]) == 0
        assert f"lock store.lock: held by pid {holder.pid}" in capsys.readouterr().out

        assert main(["gc", "--dry-run"]) == 0
        text = capsys.readouterr().out
        assert f"keyframes not checked: the clip store is in use by pid {holder.pid}" in text
        assert _listed(text, "would remove") == {p for p in remove if not p.is_relative_to(home / "keyframes")}
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert main(["doctor"]) == 0 and "locks: none held" in capsys.readouterr().out


def test_doctor_says_what_is_wrong_one_line_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _home(tmp_path, monkeypatch)
    monkeypatch.setenv("CUTPILOT_FFMPEG", "no-such-ffmpeg")
    monkeypatch.setenv("CUTPILOT_TEXT_EMBEDDER", "hash:32")
    get_settings.cache_clear()
    capsys.readouterr()
    assert main(["doctor"]) == 1
    problems = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("problem: ")]
    assert len(problems) == 2
    assert "'no-such-ffmpeg' not found" in problems[0] and "hash:32 is configured" in problems[1]


def test_a_render_names_its_cache_files_for_gc(tmp_path: Path) -> None:
    """The recorded names are the files the render left in its cache (so a kept run keeps exactly those)."""
    from cutpilot.timeline import CardItem, ImageItem, OutputSpec, Timeline
    from tools.render import render

    src = REPO / "tests" / "fixtures" / "render" / "skimage_coffee_cup.png"
    tl = Timeline(output=OutputSpec.preset("1:1", scale=0.1), video=[
        ImageItem(id="a", source=str(src), start_ms=0, duration_ms=500),
        CardItem(id="c", text="Hi", start_ms=500, duration_ms=500)])
    cache = tmp_path / "cache"
    res = render(tl, tmp_path / "ad.mp4", settings=Settings(home=tmp_path / "home"), quality="draft",
                 cache_dir=cache)
    made = {str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()}
    named = set(res.cache_files)
    assert res.cache_dir == str(cache.resolve())
    assert {n for n in named if n.startswith(("seg-", "final-", "audio-"))} == \
        {n for n in made if n.startswith(("seg-", "final-", "audio-"))}
    assert named <= made | {n for n in named if n.endswith(".json")}
    again = render(tl, tmp_path / "ad2.mp4", settings=Settings(home=tmp_path / "home"), cache_dir=cache,
                   quality="draft")
    assert again.cached and set(again.cache_files) == named
