"""The gcin concatenative Mandarin voice: text rules (numbers, sandhi, zhuyin) as units; real gcin syllables
through tools.tts; the packaged Whisper hears the line (the espeak-ng 1.51 take of it fails the same gate)."""

from __future__ import annotations

import tempfile
import wave
from pathlib import Path

import pytest

from cutpilot.errors import InputError, ToolMissingError
from cutpilot.media import probe
from cutpilot.settings import Settings
from cutpilot.zhnum import cn_number, normalize_numbers
from tools import zhvoice
from tools.tts import SAMPLE_RATE, tts
from tools.voicecheck import check_speech
from tools.zhvoice import apply_sandhi, pinyin_to_zhuyin, plan

WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"  # shared with test_asr
LINE = "今天直播间下单买一送一。"
needs_gcin = pytest.mark.skipif(not zhvoice.available("gcin3"),
                                reason="gcin-voice not installed (scripts/setup.sh installs it: apt gcin-voice)")


def _syl(text: str) -> list[str]:
    return [t.pinyin for t in plan(text) if t.kind == "syl"]


# --- text rules ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "spoken"), [
    ("4千克", "四千克"), ("20多年", "二十多年"), ("5-6岁", "五到六岁"), ("3.5倍", "三点五倍"), ("50%", "百分之五十"),
    ("2024年", "二零二四年"), ("2个", "两个"), ("105元", "一百零五元"), ("12000", "一万二千"), ("10", "十"),
    ("1005", "一千零五"), ("0571", "零五七一"), ("第1名", "第一名"), ("iPhone 15", "iPhone 十五"), ("４千克", "四千克"),
])
def test_numbers_read_as_chinese(text: str, spoken: str) -> None:
    assert normalize_numbers(text) == spoken


def test_cn_number_zeros_and_units() -> None:
    assert [cn_number(n) for n in (0, 11, 20, 101, 110, 1010, 10001, 200000000)] == [
        "零", "十一", "二十", "一百零一", "一百一十", "一千零一十", "一万零一", "二亿"]


def test_third_tone_sandhi() -> None:
    assert apply_sandhi(list("你好"), ["ni3", "hao3"]) == ["ni2", "hao3"]
    assert apply_sandhi(list("展览馆"), ["zhan3", "lan3", "guan3"]) == ["zhan2", "lan2", "guan3"]
    assert apply_sandhi(list("你的"), ["ni3", "de5"]) == ["ni3", "de5"]  # a neutral tone breaks the run
    assert _syl("你好，我很好") == ["ni2", "hao3", "wo2", "hen2", "hao3"]  # a pause ends the phrase


@pytest.mark.parametrize(("text", "yi"), [
    ("一觉", "yi2"), ("一支", "yi4"), ("一台", "yi4"), ("一百", "yi4"), ("第一台", "yi1"), ("十一", "yi1"),
    ("看一看", "yi5"), ("统一", "yi1"), ("一", "yi1"),
])
def test_yi_sandhi(text: str, yi: str) -> None:
    assert _syl(text)[text.index("一")] == yi


def test_bu_sandhi_and_buy_one_get_one() -> None:
    assert _syl("不对") == ["bu2", "dui4"]
    assert _syl("不好") == ["bu4", "hao3"]
    assert _syl("好不好")[1] == "bu5"
    assert _syl("买一送一") == ["mai3", "yi1", "song4", "yi1"]  # numerals, said as numbers


def test_polyphones_from_phrases() -> None:
    assert _syl("乐高")[0] == "le4" and _syl("音乐")[1] == "yue4"
    assert _syl("银行")[1] == "hang2" and _syl("行走")[0] == "xing2"


@pytest.mark.parametrize(("pinyin", "zhuyin"), [
    ("ni3", "ㄋㄧ3"), ("zhi1", "ㄓ"), ("si4", "ㄙ4"), ("de5", "ㄉㄜ1"), ("lv4", "ㄌㄩ4"), ("xue2", "ㄒㄩㄝ2"),
    ("jun1", "ㄐㄩㄣ"), ("yong3", "ㄩㄥ3"), ("you3", "ㄧㄡ3"), ("jiu3", "ㄐㄧㄡ3"), ("gui4", "ㄍㄨㄟ4"),
    ("lun2", "ㄌㄨㄣ2"), ("wei4", "ㄨㄟ4"), ("er2", "ㄦ2"), ("shuang1", "ㄕㄨㄤ"), ("dong1", "ㄉㄨㄥ"),
])
def test_pinyin_to_gcin_zhuyin(pinyin: str, zhuyin: str) -> None:
    assert pinyin_to_zhuyin(pinyin) == zhuyin


def test_bad_pinyin_is_an_input_error() -> None:
    with pytest.raises(InputError):
        pinyin_to_zhuyin("qqq3")


def test_latin_words_are_skipped_and_listed() -> None:
    toks = plan("LEGO机械组")
    assert [t.text for t in toks if t.kind == "skip"] == ["LEGO"]
    assert [t.text for t in toks if t.kind == "syl"] == ["机", "械", "组"]
    n = [t for t in plan("送20个") if t.kind == "syl"]
    assert [t.text for t in n] == ["送", "二", "十", "个"] and n[1].src == n[2].src == (1, 3)


# --- real syllables -----------------------------------------------------------------------------------------
@needs_gcin
def test_synthesize_real_syllables(tmp_path: Path) -> None:
    r = zhvoice.synthesize("新品上市，限时优惠！LEGO", tmp_path / "a.wav")
    assert r.voice == "gcin3" and "GPL-3" in r.licence and r.skipped == ["LEGO"]
    assert [s.text for s in r.syllables] == list("新品上市限时优惠")
    d = zhvoice.voice_dir()
    assert d is not None and all((d / s.zhuyin / "3.ogg").is_file() for s in r.syllables)
    pr = probe(r.path)
    assert pr.sample_rate == SAMPLE_RATE and abs(pr.duration - r.duration_s) < 0.02
    starts = [s.start_s for s in r.syllables]
    assert starts == sorted(starts) and r.syllables[-1].end_s <= r.duration_s
    # the comma is a real pause; inside a phrase neighbours overlap
    assert r.syllables[4].start_s - r.syllables[3].end_s >= 0.2
    assert r.syllables[1].start_s < r.syllables[0].end_s
    # time-stretch to a slot keeps the words and hits the target
    fit = zhvoice.synthesize("新品上市，限时优惠！", tmp_path / "b.wav", target_s=r.duration_s * 0.8)
    assert abs(probe(fit.path).duration - r.duration_s * 0.8) < 0.1
    with wave.open(str(fit.path)) as w:
        assert w.getnchannels() == 1


@needs_gcin
def test_female_voice_and_its_licence(tmp_path: Path) -> None:
    r = zhvoice.synthesize("限时优惠", tmp_path / "f.wav", voice="gcin5")
    assert r.voice == "gcin5" and r.licence.startswith("CC-BY-3.0")
    with pytest.raises(InputError):
        zhvoice.synthesize("限时优惠", tmp_path / "x.wav", voice="gcin9")
    with pytest.raises(InputError, match="nothing speakable"):
        zhvoice.synthesize("LEGO", tmp_path / "y.wav")


@needs_gcin
def test_tts_ladder_uses_gcin_for_mandarin(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    res = tts(LINE, lang="zh", settings=s, out_dir=tmp_path)
    assert res.provider == "gcin-voice:gcin3" and res.voice == "gcin3" and res.timing == "aligned"
    assert any("licence" in n and "GPL-3" in n for n in res.notes)
    assert [w.text for w in res.words] == ["今天", "直播间", "下单", "买一送一"]
    assert all(b.start_ms >= a.end_ms for a, b in zip(res.words, res.words[1:], strict=False))
    assert res.words[-1].end_ms <= res.duration_s * 1000 + 1
    again = tts(LINE, lang="zh", settings=s, out_dir=tmp_path)
    assert again.cached and again.path == res.path and again.words == res.words
    # the other voice is another file; CUTPILOT_ZH_VOICE=espeak keeps the old floor
    f = tts(LINE, lang="zh", settings=Settings(home=tmp_path / "h", zh_voice="gcin5"), out_dir=tmp_path)
    assert f.provider == "gcin-voice:gcin5" and f.path != res.path
    e = tts(LINE, lang="zh", settings=Settings(home=tmp_path / "h", zh_voice="espeak"), out_dir=tmp_path)
    assert e.provider == "espeak-ng"
    with pytest.raises(InputError, match="CUTPILOT_ZH_VOICE"):
        tts(LINE, lang="zh", settings=Settings(home=tmp_path / "h", zh_voice="nope"), out_dir=tmp_path)
    # a Mandarin line with nothing Chinese in it falls back to espeak-ng, saying so
    lat = tts("LEGO", lang="zh", settings=s, out_dir=tmp_path)
    assert lat.provider == "espeak-ng" and any("gcin voice unavailable" in n for n in lat.notes)


def test_gcin_missing_is_a_tool_missing_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zhvoice, "OGG_DIRS", (tmp_path / "none",))
    assert zhvoice.voice_dir() is None and not zhvoice.available()
    with pytest.raises(ToolMissingError, match="gcin-voice"):
        zhvoice.synthesize("你好", tmp_path / "a.wav")
    res = tts("你好", lang="zh", settings=Settings(home=tmp_path), out_dir=tmp_path)
    assert res.provider == "espeak-ng"  # the ladder's floor


# --- heard by Whisper ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def asr_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), whisper_model=str(WHISPER_DIR), whisper_threads=2)


@needs_gcin
@pytest.mark.slow
def test_gcin_line_passes_and_espeak_line_fails_the_gate(tmp_path: Path, asr_settings: Settings) -> None:
    good = tts(LINE, lang="zh", settings=asr_settings, out_dir=tmp_path)
    c = check_speech(good.path, LINE, "zh", asr_settings, cache_dir=tmp_path / "checks")
    assert c.ok and c.error < asr_settings.voice_check_max_cer == c.threshold, c
    assert "买一送一" in c.heard
    noise = tts(LINE, lang="zh", settings=asr_settings, out_dir=tmp_path, provider="espeak")
    assert noise.provider == "espeak-ng" and noise.voice == "cmn"
    bad = check_speech(noise.path, LINE, "zh", asr_settings, cache_dir=tmp_path / "checks")
    assert not bad.ok and bad.error > 0.8, bad
