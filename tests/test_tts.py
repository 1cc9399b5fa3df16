"""TTS: real offline voices (piper joe, espeak-ng cmn) probed with ffprobe; OpenAI-compatible endpoint against a
local HTTP server, including its failure paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutpilot.errors import ProviderError, ToolMissingError
from cutpilot.media import probe
from cutpilot.settings import Settings
from tests._media import SHARED_MEDIA
from tests.http_servers import Reply, TestServer
from tools.tts import SAMPLE_RATE, _read_wav, piper_model, speech_spans, tts

MEDIA = Path(SHARED_MEDIA + "/audio")


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _check_wav(path: Path, min_s: float) -> float:
    pr = probe(path)
    assert pr.acodec == "pcm_s16le" and pr.sample_rate == SAMPLE_RATE and not pr.has_video
    assert pr.raw["streams"][0]["channels"] == 1
    assert pr.duration > min_s
    return pr.duration


def _check_words(res, n: int, timing: str = "estimated") -> None:  # type: ignore[no-untyped-def]
    assert len(res.words) == n
    starts = [w.start_ms for w in res.words]
    assert starts == sorted(starts)
    assert all(w.end_ms > w.start_ms for w in res.words)
    assert res.words[-1].end_ms <= res.duration_s * 1000 + 1
    assert res.timing == timing and any(("estimated" if timing == "estimated" else "alignments") in note
                                        for note in res.notes)


@pytest.mark.skipif(piper_model() is None, reason="piper extra not installed")
def test_piper_english_offline(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    text = "Meet the new racer. Built for speed, made to last!"
    res = tts(text, lang="en", settings=s, out_dir=tmp_path)
    assert res.provider == "piper:joe-us" and not res.cached
    dur = _check_wav(res.path, 1.5)
    assert abs(dur - res.duration_s) < 0.05
    _check_words(res, 10, "aligned" if _has_onnx() else "estimated")
    # The pause after the first sentence is real: the second sentence starts after the first ends + a gap.
    assert res.words[4].start_ms - res.words[3].end_ms >= 100
    again = tts(text, lang="en", settings=s, out_dir=tmp_path)
    assert again.cached and again.path == res.path and again.words == res.words


def test_espeak_mandarin_and_words(tmp_path: Path) -> None:
    res = tts("新品上市，限时优惠，买一送一。", lang="zh", settings=Settings(home=tmp_path, zh_voice="espeak"),
              out_dir=tmp_path)
    assert res.provider == "espeak-ng" and res.voice == "cmn"
    _check_wav(res.path, 1.0)
    assert [w.text for w in res.words] == ["新品", "上市", "限时", "优惠", "买一送一"]
    _check_words(res, 5)
    # word spans sit on detected speech, not in silence
    spans = speech_spans(_read_wav(res.path), SAMPLE_RATE)
    for w in res.words:
        mid = (w.start_ms + w.end_ms) / 2000
        assert any(a - 0.05 <= mid <= b + 0.05 for a, b in spans)


def test_espeak_forced_for_english_and_unknown_language(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    res = tts("Hello there", lang="en", settings=s, out_dir=tmp_path, provider="espeak")
    assert res.provider == "espeak-ng"
    _check_words(res, 2)
    with pytest.raises(ToolMissingError, match="captions only"):
        tts("hola", lang="xx-klingon", settings=s, out_dir=tmp_path)
    with pytest.raises(ProviderError, match="CUTPILOT_TTS_MODEL"):
        tts("hi", lang="en", settings=s, out_dir=tmp_path, provider="openai")


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(home=tmp_path, tts_model="tts-1", openai_base_url=url + "/v1", openai_api_key="k",
                    provider_timeout_s=0.5)


def test_openai_compatible_endpoint(tmp_path: Path) -> None:
    wav = (MEDIA / "cmu_arctic_a0007.wav").read_bytes()  # a real 16 kHz voice recording
    with TestServer({"POST /v1/audio/speech": Reply(200, wav, content_type="audio/wav")}) as srv:
        res = tts("And you always want to see it in the superlative degree.", lang="en",
                  settings=_settings(tmp_path, srv.url), out_dir=tmp_path, voice="nova")
        body = srv.requests[0].json()
    assert body == {"model": "tts-1", "input": "And you always want to see it in the superlative degree.",
                    "voice": "nova", "response_format": "wav"}
    assert res.provider == "openai:tts-1"
    assert abs(_check_wav(res.path, 3.5) - 4.0) < 0.1  # resampled 16k → 24k, length kept
    _check_words(res, 11)


@pytest.mark.parametrize(("reply", "match"), [
    (Reply(401, {"error": "bad key"}), "rejected the request: 401"),
    (Reply(503, "overloaded"), "server error 503"),
    (Reply(200, {"oops": 1}), "instead of audio"),
    (Reply(200, b"\x00" * 400, content_type="audio/wav"), "undecodable audio"),
    (Reply(200, b"RIFF", content_type="audio/wav", delay_s=1.2), "timed out"),
])
def test_openai_failures_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: Reply,
                                   match: str) -> None:
    import tools.providers as prov

    orig = prov.ProviderClient.__init__

    def fast(self, *a, **kw):  # type: ignore[no-untyped-def]  # same client, test-sized backoff
        kw["backoff_s"] = 0.01
        kw["retries"] = 0 if reply.delay_s else kw.get("retries", 2)
        orig(self, *a, **kw)

    monkeypatch.setattr(prov.ProviderClient, "__init__", fast)
    with TestServer({"POST /v1/audio/speech": reply}) as srv:
        s = _settings(tmp_path, srv.url).model_copy(update={"provider_timeout_s": 0.3})
        with pytest.raises(ProviderError, match=match):
            tts("hello", lang="en", settings=s, out_dir=tmp_path)


def test_openai_failure_falls_back_offline_when_asked(tmp_path: Path) -> None:
    with TestServer({"POST /v1/audio/speech": Reply(400, "unknown voice")}) as srv:
        res = tts("Hello world", lang="en", settings=_settings(tmp_path, srv.url), out_dir=tmp_path,
                  fallback_offline=True)
    assert res.provider in ("piper:joe-us", "espeak-ng")
    assert any("TTS provider failed" in n and "400" in n for n in res.notes)
    _check_wav(res.path, 0.3)
