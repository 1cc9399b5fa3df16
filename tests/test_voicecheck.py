"""The ASR round-trip gate on real speech and the packaged Whisper: an English piper line passes, a gcin Mandarin
line passes, espeak-ng 1.51 `cmn` noise fails, the second call is a cache hit, videos are heard too."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from cutpilot.errors import InputError, MediaError
from cutpilot.media import run_ffmpeg
from cutpilot.settings import Settings
from tools import zhvoice
from tools.tts import piper_model, tts
from tools.voicecheck import check_speech, metric_lang, speech_error, threshold_for, transcribe_text

WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"  # shared with test_asr
JFK = Path(__file__).parent / "fixtures" / "ingest" / "jfk_ask_not.wav"
ZH = "夏天出门，记得涂防晒霜。"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), whisper_model=str(WHISPER_DIR), whisper_threads=2)


def test_metric_and_thresholds() -> None:
    s = Settings(voice_check_max_cer=0.3, voice_check_max_wer=0.2)
    assert [metric_lang(x) for x in ("zh", "zh-CN", "cmn", "en-US", "fr")] == ["zh", "zh", "zh", "en", "fr"]
    assert threshold_for("zh-cn", s) == 0.3 and threshold_for("en", s) == 0.2
    assert Settings().voice_check_max_cer == 0.35 and Settings().voice_check_max_wer == 0.25
    # Whisper writes numerals; the script may write 4千: both are read out before comparing
    assert speech_error("4千克大容量", "4000克大容量", "zh") == 0.0
    assert speech_error("Built for speed", "built for speed.", "en") == 0.0


def test_bad_inputs(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(MediaError):
        check_speech(tmp_path / "missing.wav", "hello", "en", settings, cache_dir=tmp_path)
    with pytest.raises(InputError):
        check_speech(JFK, "  ", "en", settings, cache_dir=tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(piper_model() is None, reason="piper extra not installed")
def test_english_piper_line_passes_and_second_call_is_cached(tmp_path: Path, settings: Settings) -> None:
    text = "Order today and get free shipping on every pair."
    r = tts(text, lang="en", settings=settings, out_dir=tmp_path)
    c = check_speech(r.path, text, "en", settings, cache_dir=tmp_path / "checks")
    assert c.ok and not c.cached and c.threshold == 0.25, c  # piper's noise sampling varies: 0.0 in most runs
    assert "shipping" in c.heard.lower()
    t = time.perf_counter()
    again = check_speech(r.path, text, "en", settings, cache_dir=tmp_path / "checks")
    assert time.perf_counter() - t < 0.2  # no ffmpeg, no Whisper
    assert again.cached and again.heard == c.heard and again.error == c.error and again.ok
    entries = list((tmp_path / "checks").glob("voicecheck_*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["heard"] == c.heard
    # another expected text is another entry (and a failing one: this is not what was said)
    other = check_speech(r.path, "Totally different words about cooking pasta tonight", "en", settings,
                         cache_dir=tmp_path / "checks")
    assert not other.cached and not other.ok
    # a stricter threshold re-judges the cached result without re-listening
    strict = check_speech(r.path, text, "en", Settings(home=settings.home, whisper_model=settings.whisper_model,
                                                        voice_check_max_wer=0.0), cache_dir=tmp_path / "checks")
    assert strict.cached and strict.threshold == 0.0 and strict.ok == (c.error == 0.0)


@pytest.mark.slow
@pytest.mark.skipif(not zhvoice.available(), reason="gcin-voice not installed (scripts/setup.sh installs it)")
def test_mandarin_gcin_passes_espeak_noise_fails(tmp_path: Path, settings: Settings) -> None:
    good = tts(ZH, lang="zh", settings=settings, out_dir=tmp_path)
    assert good.provider.startswith("gcin-voice")
    c = check_speech(good.path, ZH, "zh", settings, cache_dir=tmp_path)
    assert c.ok and c.error <= 0.2 and c.threshold == 0.35, c
    noise = tts(ZH, lang="zh", settings=settings, out_dir=tmp_path, provider="espeak")
    bad = check_speech(noise.path, ZH, "zh", settings, cache_dir=tmp_path)
    assert not bad.ok and bad.error > 0.8, bad


@pytest.mark.slow
def test_transcribe_text_hears_a_video(tmp_path: Path, settings: Settings) -> None:
    mp4 = tmp_path / "jfk.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=black:s=160x90:r=10", "-i", str(JFK), "-shortest",
                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ar", "44100", "-ac", "2", str(mp4)])
    heard = transcribe_text(mp4, "en", settings).lower()
    assert "ask not what your country can do for you" in heard
