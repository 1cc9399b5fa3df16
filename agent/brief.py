"""Deterministic brief parsing (zh + en): the checkable facts of a request (length, aspect, platform, formats,
product, language) and its angle. Every brain starts from this: a model may fill soft fields, never overrule these.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from agent.claims import Policy
from agent.rules import CJK, fold, is_injection
from cutpilot.errors import InputError
from cutpilot.limits import ASPECT_NAMES
from cutpilot.models import FORMAT_ALIASES, ClipFormat
from cutpilot.storyboard import AngleFamily, Brief

DUR = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-\s*)?(?:s\b|sec\b|secs\b|second|seconds|秒|s(?=[^a-z]))", re.I)
ASPECT = re.compile(r"(9\s*[:：x/]\s*16|16\s*[:：x/]\s*9|1\s*[:：x/]\s*1|4\s*[:：x/]\s*5)")
# Any ratio written N:M (or N比M): "7:3" is an aspect the renderer does not make, said so rather than ignored.
# Clock times ("8:30", "20:00") are not ratios: a two-digit second number other than 10, 16 or 21 is a time.
ANY_ASPECT = re.compile(r"(?<![\d:.])(\d{1,2})\s*(?:[:：]|比)\s*(\d{1,2})(?![\d:])(?!\s*(?:am|pm|点|分))", re.I)
_CLAUSE = re.compile(r"(?<=[。！？!?；;\n])|(?<=\.)\s+")

PLATFORM_ASPECT: dict[str, str] = {
    "抖音": "9:16", "douyin": "9:16", "tiktok": "9:16", "快手": "9:16", "kuaishou": "9:16", "视频号": "9:16",
    "reels": "9:16", "shorts": "9:16", "小红书": "4:5", "xiaohongshu": "4:5", "rednote": "4:5",
    "instagram": "4:5", "朋友圈": "1:1", "wechat moments": "1:1", "youtube": "16:9", "b站": "16:9",
    "bilibili": "16:9", "淘宝": "9:16", "taobao": "9:16",
    "竖屏": "9:16", "vertical": "9:16", "横屏": "16:9", "landscape": "16:9", "方形": "1:1", "square": "1:1",
}

# Pain-point vocabulary: (keywords, canonical zh, canonical en)
ANGLES: list[tuple[tuple[str, ...], str, str]] = [
    (("侧睡纹", "侧睡", "side-sleep", "side sleep", "sleep wrinkle", "pillow"), "侧睡纹", "side-sleep wrinkles"),
    (("熬夜", "stay up", "late night", "美国作息"), "熬夜", "late nights"),
    (("眼袋", "eye bag"), "眼袋", "eye bags"),
    (("细纹", "淡纹", "fine line", "wrinkle", "抗皱"), "细纹", "fine lines"),
    (("暗沉", "dull"), "暗沉", "dull skin"),
    (("补水", "保湿", "hydrat", "moistur"), "补水保湿", "hydration"),
    (("犯困", "疲惫", "没精神", "tired", "sleepy", "exhausted"), "犯困", "tired mornings"),
]

# Angle families decide the hook: a pain brief opens on the problem, a fun brief on the fun, an offer brief on
# the deal. Checked in this order; the first family with a keyword in the brief wins.
FAMILY_WORDS: list[tuple[AngleFamily, tuple[str, ...]]] = [
    ("offer", ("优惠", "促销", "折扣", "买一送一", "包邮", "大促", "秒杀", "618", "双十一", "双11", "限时", "半价",
               "sale", "discount", "deal", "free shipping", "coupon", "% off", "bogo", "offer", "promo",
               "half price", "half-price")),
    ("fun", ("乐趣", "好玩", "有趣", "拼装", "搭建", "体验", "快乐", "亲子", "周末", "fun", "play", "building",
             "hands-on", "weekend", "screen-free", "gift", "礼物", "joy", "experience")),
    ("curiosity", ("揭秘", "为什么", "秘密", "首发", "新品", "curious", "secret", "why ", "reveal", "launch",
                   "behind the")),
    ("benefit", ("效果", "功效", "好处", "改善", "成分", "品质", "质感", "benefit", "result", "quality",
                 "ingredient", "showing the", "show the", "feature", "gears", "steering")),
    ("pain", ("侧睡纹", "侧睡", "细纹", "皱纹", "眼袋", "熬夜", "暗沉", "痛点", "烦恼", "困扰", "问题", "干燥",
              "wrinkle", "fine line", "eye bag", "dull", "pain", "problem", "tired", "struggle")),
]

TONES: dict[str, tuple[str, ...]] = {
    "energetic": ("energetic", "活力", "动感", "燃", "upbeat", "fast-paced", "快节奏"),
    "calm": ("calm", "温柔", "舒缓", "soft", "gentle"),
    "premium": ("premium", "luxury", "高级", "奢华", "elegant"),
    "fun": ("fun", "funny", "搞笑", "有趣", "playful"),
}

_ANGLE_PHRASE = [
    re.compile(r"(?:突出|主打|强调|围绕|聚焦|讲)([\u4e00-\u9fffA-Za-z0-9 ]{2,12}?)(?:的|[，,。；;！!]|$)"),
    re.compile(r"([\u4e00-\u9fffA-Za-z0-9-]{2,12})(?:角度|卖点|主题)"),
    re.compile(r"(?:highlight(?:ing|s)?|focus(?:ing)? on|about|showing|show(?:ing)? off)\s+(?:the\s+)?"
               r"([a-z][a-z -]{2,30}?)(?:,|\.|;| for | in | with | end |$)", re.I),
    re.compile(r"([a-z][a-z -]{2,30}?)\s+angle\b", re.I),
]


class ProductMatcher(Protocol):
    """What brief parsing needs of the product book: find a product named (by name or alias) in free text."""

    def match(self, text: str) -> Any: ...


def norm_aspect(raw: str) -> str:
    a, b = re.split(r"\s*[:：x/]\s*", raw.strip())
    return f"{a}:{b}"


def unsupported_aspect(text: str) -> str | None:
    """The first N:M ratio in the text that is not a supported aspect (None when every ratio is supported)."""
    for m in ANY_ASPECT.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        if not a or not b or (len(m.group(2)) == 2 and b not in (10, 16, 21)):
            continue
        if f"{a}:{b}" not in ASPECT_NAMES and not _declined(text, m.start(), m.end()):
            return f"{a}:{b}"
    return None


_NO_BEFORE = re.compile(r"(不要|别用|不用|不是|not|no|avoid|instead of|rather than)\s*$", re.I)
_NO_AFTER = re.compile(r"^\s*(不要|不用|不行|就不要了|is wrong|won't do|no thanks)", re.I)


def _declined(text: str, a: int, b: int) -> bool:
    """'3:4 不要，用 1:1', 'not 3:4': a ratio the request turns down is no aspect asked for."""
    return bool(_NO_BEFORE.search(text[max(0, a - 12):a]) or _NO_AFTER.search(text[b:b + 12]))


def precheck(text: str) -> None:
    """What a request can be refused for before a library is opened (milliseconds, no model): its length and an
    aspect the renderer does not make."""
    from cutpilot.limits import MAX_BRIEF_CHARS

    t = " ".join((text or "").split())
    if len(t) > MAX_BRIEF_CHARS:
        raise InputError(f"brief text is {len(t)} characters; at most {MAX_BRIEF_CHARS}")
    if bad := unsupported_aspect(t):
        raise InputError(f"brief aspect {bad} is not supported; use one of {', '.join(ASPECT_NAMES)}")


def request_text(text: str) -> str:
    """The request without clauses that read as instructions to the planner (a brief pasted from a product page
    or a chat may carry them): what is left is what the user asked for."""
    parts = [p for p in _CLAUSE.split(text) if p and p.strip()]
    return " ".join(p.strip() for p in parts if not is_injection(p)).strip()


_CLOSING = re.compile(r"(end(?:ing)? (?:on|with)|finish(?:ing)? with|close with|wrap up with)[^,，。.;；]*|"
                      r"以[^，,。；;]{1,12}(结尾|收尾)|(结尾|最后)[^，,。；;]{0,12}")


def angle_family(text: str) -> AngleFamily | None:
    """The family of what the text leads with; how it should end ("end with free shipping") is not its angle."""
    low = _CLOSING.sub(" ", fold(text))
    for fam, keys in FAMILY_WORDS:
        if any(k in low for k in keys):
            return fam
    return None


def _angle_text(t: str, lang: str) -> str | None:
    low = t.lower()
    for keys, zh_name, en_name in ANGLES:
        if any(k in low for k in keys):
            return zh_name if lang == "zh" else en_name
    for rx in _ANGLE_PHRASE:
        m = rx.search(t)
        if m:
            cand = m.group(1).strip(" -")
            if cand and not re.fullmatch(r"\d+\s*(s|秒)?", cand) and cand.lower() not in {"it", "the", "a"}:
                return cand
    return None


def parse_brief(text: str, products: list[str] | None = None, *, base: Brief | None = None,
                book: ProductMatcher | None = None) -> Brief:
    """Keyword/regex parsing of a zh or en request into a Brief; `base` supplies explicit CLI values, `book` the
    product facts whose aliases name products in the text."""
    raw = " ".join((text or "").split())
    if not raw and base is None:
        raise InputError("empty brief: say what ad to make, e.g. 'make a 30s side-sleep wrinkle ad'")
    t = request_text(raw) if raw else raw
    if raw and not t and base is None:
        raise InputError("the brief reads as instructions to the planner, not an ad request: say what ad to make, "
                         "e.g. 'make a 30s side-sleep wrinkle ad'")
    if bad := unsupported_aspect(t):
        raise InputError(f"brief aspect {bad} is not supported; use one of {', '.join(ASPECT_NAMES)}")
    low = t.lower()
    data: dict[str, Any] = {"text": raw}
    m = DUR.search(t)
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
    wanted = [m for m in ASPECT.finditer(t) if not _declined(t, m.start(), m.end())]
    if wanted:
        data["aspect"] = norm_aspect(wanted[-1].group(1))
    # mostly Chinese text → zh; an English request that merely names a Chinese product stays en
    lang = "zh" if len(CJK.findall(t)) > len(re.findall(r"[A-Za-z]{2,}", t)) else "en"
    if re.search(r"英文|英语|\benglish\b", low):
        lang = "en"
    elif re.search(r"中文|in chinese|mandarin", low):
        lang = "zh"
    data["lang"] = lang
    hit = book.match(t) if book is not None else None
    product = getattr(hit, "name", None) if hit is not None else None
    policy = Policy.of(hit)
    angle = _angle_text(t, lang)
    if angle and policy.ok(angle):  # brief words reach lines and cards: a forbidden claim never becomes the angle
        data["angle"] = angle
    fam = angle_family(t)
    if fam:
        data["angle_family"] = fam
    product = product or match_product(t, products or [])
    if product:
        data["product"] = product
    formats: list[ClipFormat] = []
    for alias, fmt in sorted(FORMAT_ALIASES.items(), key=lambda kv: -len(kv[0])):
        if alias in low and fmt not in formats and not re.search(rf"(不要|no |without |avoid ){re.escape(alias)}", low):
            formats.append(fmt)
    if "livestream" in low and ClipFormat.livestream not in formats:
        formats.append(ClipFormat.livestream)
    data["formats"] = formats
    avoid = re.findall(r"(?:不要|别用|\b(?:avoid|without|no)\b)\s*([\w\u4e00-\u9fff-]{2,12})", t, re.I)
    data["must_avoid"] = [a for a in avoid if a]
    inc = [(m.group(1), re.split(r"[，,。；;！!？?]", t[m.start(1):])[0])
           for m in re.finditer(r"(?:must include|include|必须有|要有)\s*([\w\u4e00-\u9fff-]{2,20})", t, re.I)]
    data["must_include"] = [w for w, clause in inc if policy.ok(clause)]
    for tone, keys in TONES.items():
        if any(k in low for k in keys):
            data["tone"] = tone
            break
    audience = _audience(t, product)
    if audience and policy.ok(audience):
        data["audience"] = audience
    if base is not None:
        merged = base.model_dump()
        for k, v in data.items():
            default = Brief.model_fields[k].default if k in Brief.model_fields else None
            if merged.get(k) in (None, [], "", default) or k == "text":
                merged[k] = v
        return validated(merged)
    return validated(data)


_AUDIENCE = [
    re.compile(r"(?:目标人群是|目标人群为|面向|适合)\s*([\u4e00-\u9fffA-Za-z0-9]{2,16}?)(?:[，,。；;]|$)"),
    re.compile(r"(?:\bfor|\btargeting|\baimed at)\s+([A-Za-z][A-Za-z0-9 '-]{1,40}?)(?:,|\.|;|$| on | in | with )",
               re.I),
]


def _audience(t: str, product: str | None) -> str | None:
    """Who the ad is for ("for tired office workers", "目标人群是美国作息的大学生"); never the product itself."""
    prod = (product or "").lower()
    for rx in _AUDIENCE:
        for m in rx.finditer(t):
            cand = m.group(1).strip(" -")
            low = cand.lower()
            if re.match(r"\d", cand) or low in {"a", "the", "an", "my"} or re.match(r"(a|an|the)\b", low):
                continue
            if prod and (low in prod or prod in low or low.split()[0] in prod.split()):
                continue
            return cand
    return None


def validated(data: dict[str, Any]) -> Brief:
    """Brief from parsed fields; an impossible value (a 400 s ad) is one clear InputError line."""
    from pydantic import ValidationError

    try:
        return Brief.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        got = repr(err.get("input"))
        got = got if len(got) <= 60 else got[:57] + "…"
        raise InputError(f"brief {field}: {err['msg']} (got {got})") from None


def match_product(text: str, products: list[str]) -> str | None:
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


def explicit_facts(text: str) -> dict[str, Any]:
    """The facts a request states outright and a model must not lose: length, aspect, platform, formats, lang."""
    b = parse_brief(text)
    out: dict[str, Any] = {"lang": b.lang}
    t = request_text(" ".join((text or "").split()))
    if DUR.search(t) or re.search(r"半分钟|\d+\s*(?:分钟|min)", t):
        out["duration_s"] = b.duration_s
    if b.platform or ASPECT.search(t):
        out["aspect"] = b.aspect
    if b.platform:
        out["platform"] = b.platform
    if b.formats:
        out["formats"] = [f.value for f in b.formats]
    return out
