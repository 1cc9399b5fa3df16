"""Planning rules every brain shares: the speaking budget, line trimming, the injection guard, score thresholds.

They live apart from any brain so the offline planner is one brain among others and an LLM brain is held to the
same numbers without importing it.
"""

from __future__ import annotations

import re
import unicodedata

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH_CHARS_PER_S = 4.5
EN_WORDS_PER_S = 2.5
MIN_SCORE = 0.15
_PUNCT_END = "，,、；;：:。.!！?？…"

# Phrases that mark text as an attempt to steer the planner. Transcripts are data: such a clip keeps its picture
# but its words are never used as narration, and nothing in them changes the plan. Matching runs on a folded form
# (width, case and whitespace normalised) so spacing and line breaks do not slip past it.
INJECTION = re.compile(
    r"(ignore (all |the |any |your )?(previous |prior |above |earlier )?(instructions|prompts?|rules)|"
    r"forget (all |your |the )?(previous |prior )?(instructions|prompts?|rules)|"
    r"disregard .{0,20}(instructions|rules)|system prompt|you are now|new instructions|"
    r"忽略(之前|以上|上面|前面|所有)的?(所有)?(内容|指令|指示|提示|要求)?|无视.{0,6}(指令|要求|规则)|"
    r"忘记.{0,6}(指令|要求|规则)|每一句都(写|说))",
    re.I,
)


def fold(text: str) -> str:
    """Width-, case- and space-normalised text for rule matching."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    return " ".join(t.split())


def is_injection(text: str) -> bool:
    return bool(INJECTION.search(fold(text)))


def speech_units(text: str, lang: str) -> float:
    """Chinese characters (zh) or words (en); the unit the speaking budget is counted in."""
    if lang == "zh":
        return float(len(CJK.findall(text)) + len(re.findall(r"[A-Za-z0-9]+", text)))
    return float(len(re.findall(r"[A-Za-z0-9']+", text)))


def budget(seconds: float, lang: str) -> float:
    return seconds * (ZH_CHARS_PER_S if lang == "zh" else EN_WORDS_PER_S)


def within_budget(text: str, seconds: float, lang: str) -> bool:
    return speech_units(text, lang) <= budget(seconds, lang) + 1e-6


def _tokens(text: str, lang: str) -> list[str]:
    if lang == "zh" or CJK.search(text):
        from cutpilot.zhseg import words

        return words(text)
    return re.findall(r"\S+\s*", text)


def trim_to_budget(text: str, seconds: float, lang: str) -> str:
    """Shorten a line to its slot's budget, ending on a clause (punctuation) when one fits, else on a word
    boundary (jieba words for Chinese): never inside a word, never empty."""
    if within_budget(text, seconds, lang):
        return text
    cap = max(1.0, float(int(budget(seconds, lang))))
    toks = _tokens(text, lang)
    kept: list[str] = []
    best_clause = ""
    for tok in toks:
        cand = "".join(kept) + tok
        if speech_units(cand, lang) > cap:
            break
        kept.append(tok)
        if tok.strip() and tok.strip()[-1] in _PUNCT_END:
            best_clause = cand
    out = "".join(kept)
    # prefer a whole clause when it keeps at least half of what fits
    if best_clause and speech_units(best_clause, lang) >= 0.5 * speech_units(out, lang):
        out = best_clause
    out = out.strip().rstrip("，,、；;：: ")
    if not out:  # a single word longer than the budget: keep it whole rather than cut it
        out = toks[0].strip() if toks else text.strip()
    return out


def ends_on_boundary(original: str, trimmed: str, lang: str) -> bool:
    """True when `trimmed` is a prefix of `original` that ends on one of its word boundaries."""
    o = original.strip()
    t = trimmed.strip().rstrip("，,、；;：:。.!！?？… ")
    if not o.startswith(t):
        return False
    pos = 0
    for tok in _tokens(o, lang):
        pos += len(tok)
        if o[:pos].rstrip("，,、；;：:。.!！?？… ") == t or o[:pos].strip() == t:
            return True
    return t == ""
