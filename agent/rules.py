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
# but its words are never used as narration, and nothing in them changes the plan. Matching runs on the guard form
# (`guard_form`: width, case, whitespace, invisible characters and look-alike letters normalised) so spacing, line
# breaks and full-width letters do not slip past it. The patterns name the act (ignore / forget / replace ... the
# instructions / captions / lines), never a payload, so "the instructions on the box" or "下单买一送一" pass.
_EN_OBJ = (r"(instructions?|prompts?|rules|directions|guidelines|commands|everything (above|before|prior|said)|"
           r"(the )?above|what you (were|have been|'ve been) told)")
_EN_SLOT = r"(lines?|captions?|subtitles?|sentences?|voice ?-?overs?|narrations?|slots?|shots?|slides?|scripts?)"
_ZH_SLOT = r"(字幕|台词|文案|配音|旁白|句子|脚本)"
INJECTION = re.compile(
    rf"(\b(ignore|disregard|forget|override|bypass|discard)\b(\W+[\w']+){{0,4}}?\W+{_EN_OBJ}|"
    r"\bdo not (follow|obey) (your|the|any|these|those) (instructions|rules|system)|system prompt|"
    r"\byou are now (a|an|the|my) ([\w-]+ )?(assistant|ai|bot|model|planner|agent|editor)\b|"
    r"\bnew (instructions|rules)\b|\b(your|a) new task\b|\bnew task( for|:| is)|"
    rf"\bfrom now on,? (you (must|will|should|are|have)|(every|each|all) {_EN_SLOT})|"
    rf"\b(every|each|all) {_EN_SLOT}( of the ad)? (must|should|shall|will|now)? ?(say|read|be|contain|show)s?\b|"
    rf"\b(write|say|put|print|show|add|use)\b.{{0,40}}\b(in|on|into|as) (every|each|all) {_EN_SLOT}|"
    rf"\b(replace|rewrite) (the|your|all|every) ({_EN_SLOT}|plan|ad)\b|"
    r"\b(attention|note to|message to|hey),? (the )?(ai|assistant|planner|model|bot|editor)\b|"
    r"\b(output|respond with|reply with) (only |exactly )?(the following|these words)|"
    r"(忽略|无视|忽视|忘记|忘掉|不要管|别管|不用管|不要理会|别理会|跳过|抛开)掉?"
    r"(你的|之前|以上|上面|前面|上述|所有|全部|系统|原来|原先|先前|此前).{0,6}?"
    r"(内容|指令|指示|提示|要求|规则|设定|命令|任务|的话|说明)|"
    r"(忽略|无视)(之前|以上|上面|前面|上述|所有|系统)|系统提示|系统指令|提示词|新的?指令|新任务|你的任务是|"
    r"你现在是(一个|另一个|新的)?.{0,4}(助手|ai|模型|机器人|编辑)|从现在开始,?你?(要|必须|只能?|每一?句|所有)|"
    rf"(每一?(句|条|行|个镜头|个画面|个片段)|(所有|全部)的?{_ZH_SLOT}|{_ZH_SLOT})(里|中|上)?的?字?"
    r"(都|全都|全部|统一|一律)?(写|说|改成|改为|换成|替换成|念|打上|加上)|(别|不要|不用)按(原|之前的?|原来的?)(计划|要求|安排)|"
    rf"只(用|使用)这个(片段|视频|镜头)|(把|将)(广告|视频|{_ZH_SLOT}).{{0,8}}(改成|改为|换成|替换)|"
    r"(助手|ai|模型)(请)?注意)",
    re.I,
)
# Look-alike letters (Cyrillic, Greek) that a hostile transcript may use to spell "ignore" past a pattern.
_LOOKALIKE = str.maketrans("аеорсухіјѕԁɡοεαιτνκ", "aeopcyxijsdgoeaitvk")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_CJK_GAP = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_SPELLED = re.compile(r"\b(?:[a-z] ){2,}[a-z]\b")  # "i g n o r e" → "ignore"


def fold(text: str) -> str:
    """Width-, case- and space-normalised text for rule matching (invisible characters dropped, no spaces
    between Chinese characters)."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    t = _INVISIBLE.sub("", t)
    return _CJK_GAP.sub("", " ".join(t.split()))


def guard_form(text: str) -> str:
    """The folded text with look-alike letters mapped to Latin: what the injection guard reads."""
    t = fold(text).translate(_LOOKALIKE)
    return _SPELLED.sub(lambda m: m.group(0).replace(" ", ""), t)


def injection_pattern(text: str) -> bool:
    """True when a pattern of `INJECTION` matches the guard form."""
    return bool(INJECTION.search(guard_form(text)))


def is_injection(text: str) -> bool:
    """Whether clip (or brief) text tries to steer the planner: the patterns, then the classifier over the
    packaged multilingual embedder (recognises a reworded instruction by meaning)."""
    if not text or not text.strip():
        return False
    return injection_pattern(text) or _semantic(guard_form(text))


def _semantic(folded: str) -> bool:
    from agent.injection import classify

    return classify(folded).flagged


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
