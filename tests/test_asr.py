"""ASR on real speech with the packaged Whisper base model (loaded once per test session)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import zhconv

from cutpilot.settings import Settings
from index.asr import model_dir, transcribe, words_text

FIX = Path(__file__).parent / "fixtures" / "ingest"
# one joined model for every test session on this machine (model_dir joins atomically)
WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), whisper_model=str(WHISPER_DIR), whisper_threads=2)


def test_packaged_model_is_joined_once(settings: Settings) -> None:
    d = model_dir(settings)
    size = (d / "model.bin").stat().st_size
    assert size > 140_000_000  # both halves, not one
    assert model_dir(settings) == d and (d / "model.bin").stat().st_size == size


def test_jfk_words_with_timestamps(settings: Settings) -> None:
    tr = transcribe(FIX / "jfk_ask_not.wav", settings)
    assert tr.language == "en"
    text = " ".join(w.text.strip(" ,.").lower() for w in tr.words)
    assert "ask not what your country can do for you" in text
    assert all(isinstance(w.start, float) and isinstance(w.end, float) for w in tr.words)
    assert all(w.end > w.start for w in tr.words)
    assert all(a.start <= b.start for a, b in zip(tr.words, tr.words[1:], strict=False))
    assert 0 <= tr.words[0].start < 1.0 and 9.0 < tr.words[-1].end <= 11.1
    assert "fellow Americans" in words_text(tr.words)


def test_chinese_is_detected_and_simplified(settings: Settings) -> None:
    tr = transcribe(FIX / "zh_gcin_phrase_voice5.wav", settings)
    assert tr.language == "zh"
    assert "你好" in tr.text
    assert tr.text == zhconv.convert(tr.text, "zh-cn")  # nothing left in traditional characters
    assert all(not w.text.startswith(" ") for w in tr.words)
