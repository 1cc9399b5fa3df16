"""Digits as spoken Mandarin (4千克 → 四千克, 20多年 → 二十多年, 5-6岁 → 五到六岁): pure text, no libraries.

Shared by the concatenative voice (what to say) and the speech metrics (Whisper writes 四千 as 4000 while a
script may say 4千: both sides are read the same way before they are compared).
"""

from __future__ import annotations

import re

_DIG = "零一二三四五六七八九"
_MEASURE = set("个件支只台瓶盒条双套包袋位张片颗粒斤克次天年月周岁款色种倍层")


def _digits(s: str) -> str:
    return "".join(_DIG[int(c)] for c in s)


def _under_10k(n: int) -> str:
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d:
            if zero and out:
                out += "零"
            out += _DIG[d] + unit
            zero = False
        else:
            zero = True
    return out


def cn_number(n: int) -> str:
    """Cardinal reading: 20 → 二十, 105 → 一百零五, 12000 → 一万二千, 15 → 十五."""
    if n == 0:
        return "零"
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out, need_zero = "", False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or g < 1000):
            out += "零"
        out += _under_10k(g) + ("", "万", "亿", "万亿")[i]
        need_zero = False
    if out.startswith("一十"):
        out = out[1:]
    return out


def _read_int(s: str, following: str) -> str:
    if (len(s) > 1 and s.startswith("0")) or len(s) > 12:
        return _digits(s)  # codes, phone numbers: digit by digit
    if len(s) == 4 and following.startswith("年"):
        return _digits(s)  # 2024年 → 二零二四年
    if s == "2" and following[:1] in _MEASURE:
        return "两"
    return cn_number(int(s))


_NUM = re.compile(r"(\d+)(?:\.(\d+))?(%|％)?(?:\s*[-~～–]\s*(\d+)(?:\.(\d+))?(%|％)?)?")


def _number_piece(m: re.Match[str], following: str) -> str:
    a, af, ap, b, bf, bp = m.groups()

    def one(i: str, f: str | None, pct: bool, nxt: str) -> str:
        core = _read_int(i, nxt if not f else "") + ("点" + _digits(f) if f else "")
        return "百分之" + core if pct else core

    if b is None:
        return one(a, af, bool(ap), following)
    pct = bool(ap or bp)
    return one(a, af, pct, following) + "到" + one(b, bf, pct, following)


def normalize_numbers(text: str) -> str:
    """Digits as spoken Chinese: 4千克 → 四千克, 20多年 → 二十多年, 5-6岁 → 五到六岁, 3.5 → 三点五, 50% → 百分之五十."""
    return "".join(piece for piece, _, _ in _pieces(text))


def _pieces(text: str) -> list[tuple[str, int, int]]:
    """(spoken text, source start, source end) pieces: numbers expanded, every other character kept."""
    out: list[tuple[str, int, int]] = []
    pos = 0
    for m in _NUM.finditer(text):
        out.extend((c, i, i + 1) for i, c in enumerate(text[pos:m.start()], start=pos))
        out.append((_number_piece(m, text[m.end():m.end() + 1]), m.start(), m.end()))
        pos = m.end()
    out.extend((c, i, i + 1) for i, c in enumerate(text[pos:], start=pos))
    return out


# --- pinyin, sandhi, zhuyin ------------------------------------------------------------------------------------


__all__ = ["_DIG", "_pieces", "cn_number", "normalize_numbers"]
