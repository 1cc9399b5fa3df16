"""Pure text distances for "was it heard?": character error rate (zh) and word error rate (en).

Shared by the synthesis-time ASR gate (tools) and the eval's intelligibility scorer, so both judge a line the
same way. Normalisation drops punctuation, case and spacing, and maps digits Whisper writes as numerals to the
same spoken form on both sides (the comparison is on what a listener hears, not on how it is spelled).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EN_TOKEN = re.compile(r"[a-z0-9']+")
_ZH_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")


def text_lang(text: str) -> str:
    """'zh' when CJK characters outnumber Latin words, else 'en'."""
    cjk = len(_CJK.findall(text))
    words = len(re.findall(r"[A-Za-z]+", text))
    return "zh" if cjk and cjk >= words else "en"


def zh_units(text: str) -> list[str]:
    """Chinese characters (numbers read as spoken, 4千 → 四千 and 4000 → 四千; Latin words one unit each)."""
    from cutpilot.zhnum import normalize_numbers

    t = normalize_numbers(unicodedata.normalize("NFKC", text)).lower().translate(_ZH_DIGITS)
    return re.findall(r"[\u3400-\u9fff\uf900-\ufaff]|[a-z]+", t)


def en_units(text: str) -> list[str]:
    t = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return [w.strip("'") for w in _EN_TOKEN.findall(t) if w.strip("'")]


def units(text: str, lang: str) -> list[str]:
    return zh_units(text) if lang == "zh" else en_units(text)


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance over tokens (two-row dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def error_rate(reference: str, heard: str, lang: str) -> float:
    """CER (zh) or WER (en) of `heard` against `reference`, capped at 1.0; an empty reference scores 0."""
    ref, hyp = units(reference, lang), units(heard, lang)
    if not ref:
        return 0.0
    return min(1.0, edit_distance(ref, hyp) / len(ref))


def cer(reference: str, heard: str) -> float:
    return error_rate(reference, heard, "zh")


def wer(reference: str, heard: str) -> float:
    return error_rate(reference, heard, "en")
