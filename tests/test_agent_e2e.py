"""End to end on real parts: the real Library (Qdrant, hash embedder for speed), real licensed media, real TTS,
music and ffmpeg renderer; and a chat thread paused in one process and resumed by a fresh one from sqlite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from agent_helpers import assert_ad_invariants
from agent_media import MEDIA, PRODUCT, media_records

from agent.run import make_ad, start_chat
from cutpilot.media import probe
from cutpilot.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MEDIA.is_dir(), reason="shared test media not present")]
REPO = Path(__file__).resolve().parent.parent


def _library(settings: Settings):  # type: ignore[no-untyped-def]
    import warnings

    from index.library import Library

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(settings)
    if lib.count() == 0:
        lib.add(media_records())
    return lib


def test_offline_brief_to_rendered_ad(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home", text_embedder="hash")
    lib = _library(s)
    try:
        r = make_ad("make a 12s ad for LEGO Technic", settings=s, library=lib, out_dir=tmp_path / "out",
                    quality="draft")
    finally:
        lib.close()
    assert_ad_invariants(r, 12)
    assert r.storyboard.brief.product == PRODUCT and r.run.brain == "offline"
    p = probe(r.ad)  # type: ignore[arg-type]
    assert p.has_video and p.has_audio and (p.width, p.height) == (1080, 1920)
    assert abs(p.duration - 12) <= 0.5
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["render"]["segments_total"] >= 3 and run["render"]["duration_s"] == pytest.approx(12, abs=0.5)
    assert any(g["kind"] == "tts" for g in run["generated"]) and any(g["kind"] == "music" for g in run["generated"])
    srt = (tmp_path / "out" / "captions.srt").read_text()
    assert "Meet LEGO Technic" in srt


RESUME = """
import json, sys, warnings
sys.path.insert(0, {tests!r})
warnings.simplefilter("ignore")
from agent.run import resume_chat
from cutpilot.settings import Settings
from index.library import Library
s = Settings(text_embedder="hash")  # CUTPILOT_HOME comes from the environment, like the CLI
lib = Library.open(s)
t = resume_chat({thread!r}, sys.argv[1], settings=s, library=lib)
lib.close()
print(json.dumps({{"review": t.review, "done": t.result is not None,
                  "total": t.result.timeline.duration_ms if t.result else None,
                  "revisions": t.result.run.revisions if t.result else None}}))
"""


def test_interrupt_then_resume_in_a_fresh_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    s = Settings(home=home, text_embedder="hash")
    lib = _library(s)
    try:
        turn = start_chat("make a 10s ad for LEGO Technic", settings=s, library=lib, out_dir=tmp_path / "o",
                          render=False)
    finally:
        lib.close()
    assert turn.review is not None and (home / "checkpoints.sqlite").is_file()
    hook = turn.review["slots"][0]["clip_id"]
    env = dict(os.environ, CUTPILOT_HOME=str(home))

    def step(answer: str) -> dict:
        code = RESUME.format(tests=str(REPO / "tests"), thread=turn.thread_id)
        out = subprocess.run([sys.executable, "-c", code, answer], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    a = step("swap the hook")
    assert a["review"] is not None and a["review"]["slots"][0]["clip_id"] != hook
    b = step("approve")
    assert b["done"] and b["total"] == 10000
    assert [r["kind"] for r in b["revisions"]] == ["swap_hook", "approve"]
    assert (tmp_path / "o" / "timeline.json").is_file()


def test_cli_make_json_and_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from cutpilot.cli import main
    from cutpilot.settings import get_settings

    monkeypatch.setenv("CUTPILOT_TEXT_EMBEDDER", "hash")
    get_settings.cache_clear()
    lib = _library(get_settings())
    lib.close()
    rc = main(["make", "make an ad for LEGO Technic", "--duration", "10", "--aspect", "1:1", "--no-render",
               "--json", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0, out
    data = json.loads(out[out.index("{"):])
    assert data["total_s"] == 10 and data["brain"] == "offline" and data["slots"][0]["role"] == "hook"
    assert json.loads((tmp_path / "o" / "timeline.json").read_text())["output"]["aspect"] == "1:1"
    rc = main(["make", "make a 400s ad", "--no-render", "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert rc == 2 and "InputError" in err and len(err.strip().splitlines()) == 1
    rc = main(["resume", "no-such-thread", "--answer", "approve"])
    assert rc == 6 and "no run with thread id" in capsys.readouterr().err
