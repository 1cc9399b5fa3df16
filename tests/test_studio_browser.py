"""The studio in a real browser: Playwright driving Debian's chromium against `cutpilot serve` on a fresh home.

Playwright officially supports only its own bundled browser; here it drives the apt `chromium` through
`executable_path` (never `playwright install`). Both are pinned, and the smoke test below fails loudly when the
pairing breaks instead of letting the flow test time out somewhere obscure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
ARTIFACTS = REPO / "tests" / "artifacts" / "studio"
README_SHOT = REPO / "docs" / "studio-make.png"
CHROMIUM = shutil.which("chromium")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt install chromium; "
                                                          "scripts/setup.sh does it)")]


def _launch(p: Any) -> Any:
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])


def test_playwright_drives_chromium() -> None:
    """Smoke: the pinned Playwright can launch the apt chromium, run script and play H.264."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"playwright is not installed ({e}); install the dev extra: pip install -e '.[dev]'")
    version = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    try:
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                page = browser.new_page()
                page.set_content("<p id=x>studio 工作室</p>"
                                 "<script>document.getElementById('x').dataset.ok='1'</script>")
                assert page.locator("#x").get_attribute("data-ok") == "1"
                can = page.evaluate("document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')")
                assert can in ("probably", "maybe"), f"chromium cannot play H.264 mp4 (canPlayType={can!r})"
            finally:
                browser.close()
    except Exception as e:
        import importlib.metadata as md

        pytest.fail(f"playwright {md.version('playwright')} cannot drive {version or CHROMIUM}: "
                    f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} — pin a playwright release "
                    "that supports this chromium (or this chromium for the pinned playwright)")


# -- the flow ---------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cutpilot() -> list[str]:
    script = Path(sys.executable).with_name("cutpilot")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from cutpilot.cli import main; main()"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`cutpilot serve` on a free loopback port with its own CUTPILOT_HOME; yields the base URL."""
    port = _free_port()
    env = {**os.environ, "CUTPILOT_HOME": str(tmp_path / "home")}
    env.pop("CUTPILOT_API_TOKEN", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([*_cutpilot(), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"cutpilot serve exited {proc.returncode}: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/library", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cutpilot serve did not answer in 90 s: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if os.environ.get("CUTPILOT_SHOW_SERVE_LOG"):
            print((tmp_path / "serve.log").read_text()[-5000:])


def _settle(page: Any) -> None:
    """Let the thumbnails arrive before a screenshot (a slow one only makes the picture poorer)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=60_000)


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _settle(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _ffprobe_seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return float(json.loads(out)["format"]["duration"])


def test_studio_flow_in_a_real_browser(server: str, tmp_path: Path) -> None:
    """Ingest the samples from the page, search, make an ad, swap shot 2, play the preview, see a refused
    revision's reason, render the final and download its mp4."""
    from playwright.sync_api import expect, sync_playwright

    media = sorted(p for p in SAMPLES.iterdir() if p.suffix == ".mp4")
    timings: dict[str, float] = {}
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1360, "height": 960}, accept_downloads=True)
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            # Library, empty, then an upload of the bundled footage with its annotations.
            page.goto(server + "/library")
            expect(page.get_by_test_id("empty-library")).to_contain_text("No clips yet")
            _shot(page, "library-empty")
            page.get_by_test_id("upload-files").set_input_files([str(m) for m in media])
            page.get_by_test_id("upload-annotations").set_input_files(str(SAMPLES / "annotations.jsonl"))
            page.locator("#upload-form input[name=product]").fill("LEGO Technic")  # for clips not annotated
            t0 = time.monotonic()
            page.get_by_test_id("upload-submit").click()
            job = page.locator('#jobs [data-testid^="job-"]').first
            expect(job).to_be_visible()
            expect(job).to_have_attribute("data-status", "done", timeout=600_000)
            timings["ingest_s"] = time.monotonic() - t0
            expect(job).to_contain_text("clips from")
            cards = page.locator('[data-testid="clip-grid"] article.clip')
            expect(cards.first).to_be_visible(timeout=30_000)  # the grid refreshed itself when the job finished
            n_clips = cards.count()
            assert n_clips >= len(media), f"{n_clips} clips from {len(media)} files"
            _shot(page, "library")

            # Search (the same hybrid search as the CLI) narrows the grid.
            t0 = time.monotonic()
            page.get_by_test_id("search").fill("thanks for watching end card")
            expect(page.locator("#grid")).to_contain_text("for “thanks for watching end card”", timeout=60_000)
            timings["search_s"] = time.monotonic() - t0
            expect(cards.first).to_contain_text(re.compile("THANKS FOR WATCHING|end card", re.I))
            _shot(page, "library-search")

            # A clip's record edited in place is saved as human-verified.
            first = cards.first
            clip_id = (first.get_attribute("data-testid") or "").removeprefix("clip-")
            page.get_by_test_id(f"edit-{clip_id}").click()
            page.locator(f"#clip-{clip_id} textarea[name=description]").fill("Animated end card: THANKS FOR "
                                                                             "WATCHING on dark blue, 片尾")
            page.get_by_test_id(f"save-{clip_id}").click()
            saved = page.locator(f"#clip-{clip_id} .desc")  # the card again (saving re-embeds the record)
            expect(saved).to_contain_text("片尾", timeout=120_000)
            expect(page.locator(f"#clip-{clip_id}")).to_contain_text("verified")

            # Make: a brief → the storyboard, one card per shot.
            page.goto(server + "/make")
            page.get_by_test_id("brief").fill("A 15 s 9:16 ad for LEGO Technic: studio product shots, warm and "
                                              "playful, end on the thanks-for-watching card")
            page.locator("select[name=lang]").select_option("en")
            t0 = time.monotonic()
            page.get_by_test_id("make-submit").click()
            expect(page).to_have_url(re.compile(r"/make/[0-9a-f]{12}$"))
            expect(page.get_by_test_id("ad")).to_have_attribute("data-status", "review", timeout=600_000)
            timings["plan_s"] = time.monotonic() - t0
            shots = page.locator('[data-testid="storyboard"] article.shot')
            assert shots.count() >= 2, "the storyboard has fewer than two shots"

            # Swap shot 2 for one of its alternates; the card shows the new clip.
            shot2 = page.get_by_test_id("shot-2")
            before = shot2.get_attribute("data-clip")
            on_screen = {shots.nth(i).get_attribute("data-clip") for i in range(shots.count())}
            alts = page.locator('[data-testid^="swap-2-"]')
            expect(alts.first).to_be_visible()
            ids = [(alts.nth(i).get_attribute("data-testid") or "").removeprefix("swap-2-")
                   for i in range(alts.count())]
            new_id = next((c for c in ids if c not in on_screen), ids[0])
            assert new_id and new_id != before
            alt = page.get_by_test_id(f"swap-2-{new_id}")
            t0 = time.monotonic()
            alt.click()
            expect(page.get_by_test_id("shot-2")).to_have_attribute("data-clip", new_id, timeout=300_000)
            timings["swap_s"] = time.monotonic() - t0
            expect(page.get_by_test_id("chat")).to_contain_text("swap shot 2")

            # The draft preview plays in the page.
            t0 = time.monotonic()
            preview = page.locator("#preview")
            expect(preview).to_be_visible()
            page.evaluate("() => { const v = document.querySelector('#preview'); v.muted = true; v.play(); }")
            page.wait_for_function("document.querySelector('#preview').currentTime > 0.5", timeout=300_000)
            timings["preview_s"] = time.monotonic() - t0

            # A revision that cannot be applied answers with its reason, on screen.
            n = shots.count()
            page.get_by_test_id("chat-input").fill(f"replace shot {n + 5} with a close-up")
            page.get_by_test_id("chat-send").click()
            refused = page.locator('.msg.studio[data-applied="false"]').last
            expect(refused).to_contain_text(f"there is no shot {n + 5}", timeout=120_000)
            page.locator("#chat").evaluate("c => c.scrollTop = c.scrollHeight")
            page.evaluate("() => { const v = document.querySelector('#preview'); v.muted = true; v.play(); }")
            page.wait_for_function("document.querySelector('#preview').currentTime > 1.0", timeout=120_000)
            page.evaluate("document.querySelector('#preview').pause()")
            _shot(page, "make")
            README_SHOT.parent.mkdir(parents=True, exist_ok=True)
            page.evaluate("window.scrollTo(0, 0)")
            page.set_viewport_size({"width": 1360, "height": 1200})  # the chat's refusal in the picture too
            page.screenshot(path=str(README_SHOT), full_page=False)
            page.set_viewport_size({"width": 1360, "height": 960})

            # Approve → the final render → download the mp4 and check it with ffprobe.
            t0 = time.monotonic()
            page.get_by_test_id("render-final").click()
            expect(page.get_by_test_id("ad")).to_have_attribute("data-status", "done", timeout=900_000)
            timings["render_s"] = time.monotonic() - t0
            link = page.get_by_test_id("download-ad.mp4")
            expect(link).to_be_visible()
            with page.expect_download() as dl:
                link.click()
            out = tmp_path / "ad.mp4"
            dl.value.save_as(str(out))
            seconds = _ffprobe_seconds(out)
            assert 5.0 <= seconds <= 40.0, f"the downloaded ad is {seconds:.1f} s"
            for name in ("captions.srt", "timeline.otio", "storyboard.json"):
                expect(page.get_by_test_id(f"download-{name}")).to_be_visible()
            _shot(page, "make-done")

            # Batch and runs screens: the run is in the history with its brain and timings.
            page.goto(server + "/batch")
            expect(page.get_by_test_id("batch-form")).to_be_visible()
            _shot(page, "batch")
            page.goto(server + "/runs")
            expect(page.get_by_test_id("runs")).to_contain_text("offline")
            _shot(page, "runs")
            assert not errors, f"page script errors: {errors}"
        finally:
            browser.close()
    print("studio browser timings:", {k: round(v, 1) for k, v in timings.items()})
