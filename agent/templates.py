"""Role templates: for an ad of a given length, which roles in what order and how long each runs.

Shared by every brain: the offline planner uses them as its storyboard, an LLM brain repairs an unusable answer
onto them, and a length revision re-plans with them.
"""

from __future__ import annotations

from agent.audiences import audience_profile, channel_profile
from agent.brief import ANGLES
from cutpilot.storyboard import ROLE_CONTENT_TYPES, Brief, Slot, SlotRole, Storyboard

# For an ad of about N seconds: (role, share of the non-hook time). The hook is fixed ≤ 3 s.
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
# A hook for a non-pain brief searches for the product at its best, not for a problem.
HOOK_QUERY: dict[str, tuple[str, str]] = {
    "pain": ROLE_QUERY[SlotRole.hook],
    "fun": ("{angle} {product}", "{angle} {product}"),
    "benefit": ("{product} {angle} 效果", "{product} {angle}"),
    "curiosity": ("{product} 全新", "{product} new"),
    "offer": ("{product} 优惠", "{product} offer"),
}

ROLE_INTENT: dict[SlotRole, str] = {
    SlotRole.hook: "stop the scroll in the first 3 seconds with the brief's angle",
    SlotRole.pain_point: "make the pain concrete",
    SlotRole.product_intro: "show and name the product",
    SlotRole.feature_demo: "prove it works: the mechanism or a visible result",
    SlotRole.brand: "why trust the brand",
    SlotRole.spokesperson: "a face presenting the product",
    SlotRole.social_proof: "others already love it",
    SlotRole.offer_cta: "end on the offer and a clear call to action",
}

PAIN_ANGLES = {z for _, z, _ in ANGLES} | {e for _, _, e in ANGLES}


def hook_family(brief: Brief) -> str:
    """The brief's family; else pain for a known pain angle; else what the audience responds to (kids: fun,
    collectors: curiosity, students: offer …, agent.audiences); else benefit for any other angle, curiosity
    without one."""
    if brief.angle_family:
        return brief.angle_family
    if brief.angle and brief.angle in PAIN_ANGLES:
        return "pain"
    prof = audience_profile(brief.audience)
    if prof is not None and not (prof.hook == "pain" and not brief.angle):
        return prof.hook
    if brief.angle:
        return "benefit"
    return "curiosity"


def plan_storyboard(brief: Brief) -> Storyboard:
    """Role template for the ad length; the hook is always first and ≤ 3 s; the last slot is the offer / CTA.

    A pain brief keeps a pain-point slot; any other brief spends that time on the product instead."""
    total = float(brief.duration_s)
    chan = channel_profile(brief)
    hook_s = min(chan.hook_s if chan else 3.0, max(1.5, total * 0.2))
    rest = total - hook_s
    template = next(t for limit, t in TEMPLATES if total <= limit)
    if hook_family(brief) != "pain":
        template = [(SlotRole.feature_demo if r == SlotRole.pain_point else r, s) for r, s in template]
    shares = [s for _, s in template]
    norm = sum(shares)
    secs = [round(rest * s / norm, 2) for s in shares]
    secs[-1] = round(rest - sum(secs[:-1]), 2)
    roles = [(SlotRole.hook, round(hook_s, 2))] + [(r, s) for (r, _), s in zip(template, secs, strict=True)]
    slots = [
        Slot(index=i, role=role, target_s=s, query=slot_query(role, brief),
             content_types=list(ROLE_CONTENT_TYPES[role]), formats=list(brief.formats), product=brief.product,
             intent=ROLE_INTENT[role])
        for i, (role, s) in enumerate(roles)
    ]
    prof = audience_profile(brief.audience)
    mood = brief.tone if brief.tone in ("energetic", "calm", "premium", "fun") else \
        prof.mood if prof is not None else chan.mood if chan is not None else "upbeat"
    notes = [f"audience {brief.audience!r}: {prof.name} profile (hook {hook_family(brief)}, music {mood}, "
             f"shots: {prof.shot_words(brief.lang)})"] if prof is not None and brief.audience else []
    if chan is not None:
        notes.append(f"channel {brief.channel or brief.platform}: {chan.name} norms (hook ≤ {chan.hook_s:g} s, "
                     f"{chan.pace} pace)")
    return Storyboard(brief=brief, slots=slots, music_mood=mood, captions_lang=brief.lang, notes=notes)


AUDIENCE_SHOTS = (SlotRole.hook, SlotRole.product_intro, SlotRole.feature_demo, SlotRole.social_proof)


def slot_query(role: SlotRole, brief: Brief) -> str:
    """The search text of a slot: the role's words with the angle and product, plus, for the shots that show the
    product in use, what this audience wants to see (hands building for kids, close-ups for collectors)."""
    zh, en = HOOK_QUERY[hook_family(brief)] if role == SlotRole.hook else ROLE_QUERY[role]
    tmpl = zh if brief.lang == "zh" else en
    angle = brief.angle or brief.product or ""  # no angle named: the product is what the hook is about
    product = brief.product or brief.angle or ""
    q = tmpl.format(angle=angle, product=product)
    prof = audience_profile(brief.audience)
    if prof is not None and role in AUDIENCE_SHOTS:
        q += " " + prof.shot_words(brief.lang)
    return " ".join(q.split())
