"""The deterministic offline planner: keyword/regex brief parsing (zh + en), role templates per ad length,
retrieval-driven slot filling and templated lines. It is the default with no LLM endpoint, the fallback for any
failed LLM step, and the baseline the LLM planner has to beat.
"""

from __future__ import annotations

import re
from typing import Any

from agent.runrecord import RunRecord
from agent.sources import ClipSource
from agent.state import Candidate
from cutpilot.errors import InputError
from cutpilot.models import FORMAT_ALIASES, ClipFormat, ContentType
from cutpilot.storyboard import ROLE_CONTENT_TYPES, Brief, Slot, SlotRole, Storyboard

CJK = re.compile(r"[\u4e00-\u9fff]")
_DUR = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-\s*)?(?:s\b|sec\b|secs\b|second|seconds|秒|s(?=[^a-z]))", re.I)
_ASPECT = re.compile(r"(9\s*[:：x/]\s*16|16\s*[:：x/]\s*9|1\s*[:：x/]\s*1|4\s*[:：x/]\s*5)")

PLATFORM_ASPECT: dict[str, str] = {
    "抖音": "9:16", "douyin": "9:16", "tiktok": "9:16", "快手": "9:16", "kuaishou": "9:16", "视频号": "9:16",
    "reels": "9:16", "shorts": "9:16", "小红书": "4:5", "xiaohongshu": "4:5", "rednote": "4:5",
    "instagram": "4:5", "朋友圈": "1:1", "wechat moments": "1:1", "youtube": "16:9", "b站": "16:9",
    "bilibili": "16:9", "淘宝": "9:16", "taobao": "9:16",
    "竖屏": "9:16", "vertical": "9:16", "横屏": "16:9", "landscape": "16:9", "方形": "1:1", "square": "1:1",
}

# Angle vocabulary: (keywords, canonical zh, canonical en)
ANGLES: list[tuple[tuple[str, ...], str, str]] = [
    (("侧睡纹", "侧睡", "side-sleep", "side sleep", "sleep wrinkle", "pillow"), "侧睡纹", "side-sleep wrinkles"),
    (("熬夜", "stay up", "late night", "美国作息"), "熬夜", "late nights"),
    (("眼袋", "eye bag"), "眼袋", "eye bags"),
    (("细纹", "淡纹", "fine line", "wrinkle", "抗皱"), "细纹", "fine lines"),
    (("暗沉", "dull"), "暗沉", "dull skin"),
    (("补水", "保湿", "hydrat", "moistur"), "补水保湿", "hydration"),
]

TONES: dict[str, tuple[str, ...]] = {
    "energetic": ("energetic", "活力", "动感", "燃", "upbeat", "fast-paced", "快节奏"),
    "calm": ("calm", "温柔", "舒缓", "soft", "gentle"),
    "premium": ("premium", "luxury", "高级", "奢华", "elegant"),
    "fun": ("fun", "funny", "搞笑", "有趣", "playful"),
}

# Role templates: for an ad of about N seconds, (role, share of the non-hook time). The hook is fixed ≤ 3 s.
TEMPLATES: list[tuple[float, list[tuple[SlotRole, float]]]] = [
    (10.0, [(SlotRole.product_intro, 0.6), (SlotRole.offer_cta, 0.4)]),
    (20.0, [(SlotRole.product_intro, 0.34), (SlotRole.feature_demo, 0.38), (SlotRole.offer_cta, 0.28)]),
    (40.0, [(SlotRole.pain_point, 0.19), (SlotRole.product_intro, 0.19), (SlotRole.feature_demo, 0.22),
            (SlotRole.brand, 0.15), (SlotRole.spokesperson, 0.13), (SlotRole.offer_cta, 0.12)]),
    (999.0, [(SlotRole.pain_point, 0.16), (SlotRole.brand, 0.1), (SlotRole.product_intro, 0.16),
             (SlotRole.feature_demo, 0.18), (SlotRole.spokesperson, 0.1), (SlotRole.social_proof, 0.12),
             (SlotRole.feature_demo, 0.08), (SlotRole.offer_cta, 0.10)]),
]

ROLE_QUERY: dict[SlotRole, tuple[str, str]] = {
    SlotRole.hook: ("{angle} 痛点", "{angle} problem"),
    SlotRole.pain_point: ("{angle} 痛点 压力", "{angle} pain point"),
    SlotRole.product_intro: ("{product} 产品介绍 全新", "{product} product introduction"),
    SlotRole.feature_demo: ("{product} 功效 特性 展示", "{product} feature demo effect"),
    SlotRole.brand: ("品牌 {product} 多年", "brand story {product}"),
    SlotRole.spokesperson: ("代言人 展示 {product}", "spokesperson shows {product}"),
    SlotRole.social_proof: ("用户 评价 口碑 {product}", "customer review {product}"),
    SlotRole.offer_cta: ("优惠 下单 {product}", "offer buy now {product}"),
}

ROLE_INTENT: dict[SlotRole, str] = {
    SlotRole.hook: "stop the scroll: name the problem in the first 3 seconds",
    SlotRole.pain_point: "make the pain concrete",
    SlotRole.product_intro: "show and name the product",
    SlotRole.feature_demo: "prove it works: the mechanism or a visible result",
    SlotRole.brand: "why trust the brand",
    SlotRole.spokesperson: "a face presenting the product",
    SlotRole.social_proof: "others already love it",
    SlotRole.offer_cta: "end on the offer and a clear call to action",
}

LINES: dict[SlotRole, tuple[list[str], list[str]]] = {
    SlotRole.hook: (["还在为{angle}烦恼？", "{angle}？", "你也有{angle}吗"],
                    ["Still fighting {angle}?", "{angle}?", "Sound familiar?"]),
    SlotRole.pain_point: (["{angle}每天都在加深", "每一晚都在加深", "别再忽视"],
                          ["{angle} build up every single night.", "It adds up every night.", "Don't ignore it."]),
    SlotRole.product_intro: (["试试{product}", "全新{product}", "认识它"],
                             ["Meet {product}.", "Meet the fix.", "Meet it."]),
    SlotRole.feature_demo: (["看得见的改变", "效果看得见", "真有效"],
                            ["See the difference for yourself.", "See the difference.", "It works."]),
    SlotRole.brand: (["大牌专研，值得信赖", "值得信赖", "大牌"],
                     ["A brand you can trust.", "Trusted.", "Trusted."]),
    SlotRole.spokesperson: (["代言人都在用", "她也在用", "在用"],
                            ["Our spokesperson swears by it.", "She uses it too.", "Loved."]),
    SlotRole.social_proof: (["无数人的真实选择", "口碑之选", "好评"],
                            ["Loved by thousands of customers.", "Customers love it.", "Loved."]),
    SlotRole.offer_cta: (["限时优惠，立即下单", "立即下单", "快抢"],
                         ["Limited-time offer. Tap to shop now.", "Shop now.", "Buy now."]),
}

OFFER_CARD: dict[str, tuple[str, str]] = {"zh": ("限时优惠", "立即下单"), "en": ("Limited-time offer", "Shop now")}

# Phrases that mark text as an attempt to steer the planner. Transcripts are data: such a clip keeps its picture
# but its words are never used as narration, and nothing in them changes the plan.
INJECTION = re.compile(
    r"(ignore (all |the )?(previous|prior|above) (instructions|prompts?)|disregard .{0,20}instructions|"
    r"system prompt|you are now|忽略(之前|以上|上面|前面)的?(所有)?(指令|指示|提示)|无视.{0,6}指令)",
    re.I,
)

ZH_CHARS_PER_S = 4.5
EN_WORDS_PER_S = 2.5
MIN_SCORE = 0.15


# ----------------------------------------------------------------------------------------------------------------
# budget
def speech_units(text: str, lang: str) -> float:
    """Chinese characters (zh) or words (en); the unit the speaking budget is counted in."""
    if lang == "zh":
        return float(len(CJK.findall(text)) + len(re.findall(r"[A-Za-z0-9]+", text)))
    return float(len(re.findall(r"[A-Za-z0-9']+", text)))


def budget(seconds: float, lang: str) -> float:
    return seconds * (ZH_CHARS_PER_S if lang == "zh" else EN_WORDS_PER_S)


def within_budget(text: str, seconds: float, lang: str) -> bool:
    return speech_units(text, lang) <= budget(seconds, lang) + 1e-6


def trim_to_budget(text: str, seconds: float, lang: str) -> str:
    """Cut a line at a word / character boundary so it fits its slot (never empty)."""
    cap = max(1, int(budget(seconds, lang)))
    if within_budget(text, seconds, lang):
        return text
    if lang == "zh":
        out, n = [], 0
        for ch in text:
            if CJK.match(ch):
                if n >= cap:
                    break
                n += 1
            out.append(ch)
        return "".join(out).rstrip("，,、 ")
    words = text.split()
    return " ".join(words[:cap]).rstrip(",;")


def is_injection(text: str) -> bool:
    return bool(INJECTION.search(text or ""))


# ----------------------------------------------------------------------------------------------------------------
# understand
def _norm_aspect(raw: str) -> str:
    a, b = re.split(r"\s*[:：x/]\s*", raw.strip())
    return f"{a}:{b}"


def parse_brief(text: str, products: list[str] | None = None, *, base: Brief | None = None) -> Brief:
    """Keyword/regex parsing of a zh or en request into a Brief; `base` supplies explicit CLI values."""
    t = " ".join((text or "").split())
    if not t and base is None:
        raise InputError("empty brief: say what ad to make, e.g. 'make a 30s side-sleep wrinkle ad'")
    low = t.lower()
    data: dict[str, Any] = {"text": t}
    m = _DUR.search(t)
    if m:
        data["duration_s"] = float(m.group(1))
    elif re.search(r"半分钟", t):
        data["duration_s"] = 30.0
    elif m2 := re.search(r"(\d+)\s*(?:分钟|min)", t):
        data["duration_s"] = float(m2.group(1)) * 60
    platform = next((p for p in PLATFORM_ASPECT if p in low), None)
    if platform:
        data["platform"] = platform
        data["aspect"] = PLATFORM_ASPECT[platform]
    if am := _ASPECT.search(t):
        data["aspect"] = _norm_aspect(am.group(1))
    # mostly Chinese text → zh; an English request that merely names a Chinese product stays en
    lang = "zh" if len(CJK.findall(t)) > len(re.findall(r"[A-Za-z]{2,}", t)) else "en"
    if re.search(r"英文|英语|\benglish\b", low):
        lang = "en"
    elif re.search(r"中文|in chinese|mandarin", low):
        lang = "zh"
    data["lang"] = lang
    for keys, zh_name, en_name in ANGLES:
        if any(k in low for k in keys):
            data["angle"] = zh_name if lang == "zh" else en_name
            break
    product = _match_product(t, products or [])
    if product:
        data["product"] = product
    formats: list[ClipFormat] = []
    for alias, fmt in sorted(FORMAT_ALIASES.items(), key=lambda kv: -len(kv[0])):
        if alias in low and fmt not in formats and not re.search(rf"(不要|no |without |avoid ){re.escape(alias)}", low):
            formats.append(fmt)
    if "livestream" in low and ClipFormat.livestream not in formats:
        formats.append(ClipFormat.livestream)
    data["formats"] = formats
    avoid = re.findall(r"(?:不要|别用|avoid|without|no)\s*([\w\u4e00-\u9fff-]{2,12})", t, re.I)
    data["must_avoid"] = [a for a in avoid if a]
    inc = re.findall(r"(?:must include|include|必须有|要有)\s*([\w\u4e00-\u9fff-]{2,20})", t, re.I)
    data["must_include"] = inc
    for tone, keys in TONES.items():
        if any(k in low for k in keys):
            data["tone"] = tone
            break
    if am2 := re.search(r"(?:for|targeting|面向|给)\s*([\w\u4e00-\u9fff]{2,12}?)(?:的|人群|,|，|\s|$)", t):
        cand = am2.group(1)
        if not re.match(r"\d", cand) and cand.lower() not in {"a", "the", "an", "my"}:
            data["audience"] = cand
    if base is not None:
        merged = base.model_dump()
        for k, v in data.items():
            default = Brief.model_fields[k].default if k in Brief.model_fields else None
            if merged.get(k) in (None, [], "", default) or k == "text":
                merged[k] = v
        return _validated(merged)
    return _validated(data)


def _validated(data: dict[str, Any]) -> Brief:
    """Brief from parsed fields; an impossible value (a 400 s ad) is one clear InputError line."""
    from pydantic import ValidationError

    try:
        return Brief.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise InputError(f"brief {field}: {err['msg']} (got {err.get('input')!r})") from None


def _match_product(text: str, products: list[str]) -> str | None:
    """The library product the text names (whole name, or a ≥2-char CJK / ≥4-char latin fragment of it)."""
    low = text.lower()
    best: tuple[int, str] | None = None
    for p in products:
        pl = p.lower()
        if pl in low:
            return p
        score = 0
        for w in re.findall(r"[a-z0-9']{4,}", pl):
            if re.search(rf"\b{re.escape(w)}\b", low):
                score = max(score, len(w))
        for f in re.findall(r"[\u4e00-\u9fff]{2,}", pl):
            for n in range(len(f), 1, -1):
                if any(f[i : i + n] in low for i in range(len(f) - n + 1)):
                    score = max(score, n)
                    break
        if score >= 2 and (best is None or score > best[0]):
            best = (score, p)
    return best[1] if best else None


# ----------------------------------------------------------------------------------------------------------------
# storyboard
def plan_storyboard(brief: Brief) -> Storyboard:
    """Role template for the ad length; the hook is always first and ≤ 3 s; the last slot is the offer / CTA."""
    total = float(brief.duration_s)
    hook_s = min(3.0, max(1.5, total * 0.2))
    rest = total - hook_s
    template = next(t for limit, t in TEMPLATES if total <= limit)
    shares = [s for _, s in template]
    norm = sum(shares)
    secs = [round(rest * s / norm, 2) for s in shares]
    secs[-1] = round(rest - sum(secs[:-1]), 2)
    roles = [(SlotRole.hook, round(hook_s, 2))] + [(r, s) for (r, _), s in zip(template, secs, strict=True)]
    slots: list[Slot] = []
    for i, (role, s) in enumerate(roles):
        slots.append(
            Slot(
                index=i,
                role=role,
                target_s=s,
                query=_query(role, brief),
                content_types=list(ROLE_CONTENT_TYPES[role]),
                formats=list(brief.formats),
                product=brief.product,
                intent=ROLE_INTENT[role],
            )
        )
    mood = brief.tone if brief.tone in ("energetic", "calm", "premium", "fun") else "upbeat"
    return Storyboard(brief=brief, slots=slots, music_mood=mood, captions_lang=brief.lang)


def _query(role: SlotRole, brief: Brief) -> str:
    zh, en = ROLE_QUERY[role]
    tmpl = zh if brief.lang == "zh" else en
    angle = brief.angle or brief.product or ""  # no angle named: the product is what the hook is about
    product = brief.product or brief.angle or ""
    return " ".join(tmpl.format(angle=angle, product=product).split())


# ----------------------------------------------------------------------------------------------------------------
# select + script
def pick_best(cands: list[Candidate], used: set[str], target_s: float, min_score: float = MIN_SCORE) -> str | None:
    """Best-scoring unused clip; a small bonus for clips long enough to fill the slot without freezing."""
    best: tuple[float, str] | None = None
    rank = 0
    for c in cands:
        if c.clip.clip_id in used or c.relevance < min_score:
            continue
        fit = 1.5 if c.clip.duration >= target_s * 0.8 else 0.0
        key = -rank + fit  # keep the search order; prefer a clip that fills its slot among near neighbours
        rank += 1
        if best is None or key > best[0]:
            best = (key, c.clip.clip_id)
    return best[1] if best else None


def template_line(role: SlotRole, brief: Brief, seconds: float, lang: str) -> str:
    """The longest templated line for this role that fits the slot's speaking budget."""
    variants = LINES[role][0 if lang == "zh" else 1]
    angle = brief.angle or ("这个问题" if lang == "zh" else "it")
    if lang == "en" and brief.angle and CJK.search(brief.angle):
        angle = next((en for _, z, en in ANGLES if z == brief.angle), "it")
    product = brief.product or ("它" if lang == "zh" else "it")
    if lang == "en" and brief.product and CJK.search(brief.product):
        product = "it"
    for v in variants:
        if ("{angle}" in v and not brief.angle) or ("{product}" in v and not brief.product):
            continue
        line = v.format(angle=angle, product=product)
        if within_budget(line, seconds, lang):
            return line[0].upper() + line[1:] if lang == "en" else line
    return trim_to_budget(variants[-1].format(angle=angle, product=product), seconds, lang)


class OfflineBrain:
    """Deterministic brain: same inputs, same plan."""

    name = "offline"
    model: str | None = None

    def understand(self, text: str, products: list[str], run: RunRecord, base: Brief | None = None) -> Brief:
        return parse_brief(text, products, base=base)

    def storyboard(self, brief: Brief, run: RunRecord) -> Storyboard:
        return plan_storyboard(brief)

    def select(
        self,
        storyboard: Storyboard,
        candidates: dict[int, list[Candidate]],
        source: ClipSource,
        used: set[str],
        run: RunRecord,
    ) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        taken = set(used)
        # the hook may borrow any product shot, so it picks last: product / proof slots choose first
        for idx in sorted(candidates, key=lambda k: (storyboard.slots[k].role == SlotRole.hook, k)):
            slot = storyboard.slots[idx]
            cid = pick_best(candidates[idx], taken, slot.target_s)
            out[idx] = cid
            if cid:
                taken.add(cid)
        return out

    def script(self, storyboard: Storyboard, slots: list[int], run: RunRecord) -> dict[int, str]:
        lang = storyboard.captions_lang or storyboard.brief.lang
        return {
            i: template_line(storyboard.slots[i].role, storyboard.brief, storyboard.slots[i].target_s, lang)
            for i in slots
        }


def content_ok_for(role: SlotRole, ct: ContentType) -> bool:
    return ct in ROLE_CONTENT_TYPES[role]
