"""Grounded ad lines without a model: every line names the product, one of its selling points, its offer or the
brief's angle, in the brief's language, and fits its slot's speaking budget.

Lines come from facts (cutpilot.products), the brief and the clip on screen — never a sentence that would fit any
product's ad. The hook's wording follows the brief's angle family (pain question, benefit, fun, curiosity, offer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.audiences import point_rank
from agent.brief import ANGLES
from agent.claims import Policy
from agent.rules import CJK, trim_to_budget, within_budget
from agent.templates import hook_family
from cutpilot.storyboard import Brief, SlotRole

# Each entry: zh variants, en variants, longest first. Placeholders: {name} {point} {angle} {offer} {audience}.
HOOKS: dict[str, tuple[list[str], list[str]]] = {
    "pain": (["还在为{angle}烦恼？试试{name}", "还在为{angle}烦恼？", "{angle}怎么办？"],
             ["Still fighting {angle}? Try {name}.", "Still fighting {angle}?", "{Angle}?"]),
    "fun": (["{angle}，从{name}开始！", "{name}，{angle}！", "{angle}！"],
            ["{Angle} starts with {name}!", "{name}: {angle}!", "{Angle}!"]),
    "benefit": (["{angle}，{name}做到了", "{point}，{name}做到了", "{name}：{point}", "{point}！", "{angle}！"],
                ["{Angle}: that's {name}.", "{Point}: that's {name}.", "{name}: {point}.", "{Point}.",
                 "{Angle}!"]),
    "curiosity": (["{name}凭什么这么多人爱？", "{name}凭什么火？", "认识{name}"],
                  ["Why is everyone talking about {name}?", "Why {name}?", "Meet {name}."]),
    "offer": (["{offer}！{name}", "{offer}！"], ["{Offer} on {name}!", "{Offer}!"]),
}

BODY: dict[SlotRole, tuple[list[str], list[str]]] = {
    SlotRole.pain_point: (["{angle}每一晚都在加深，{name}帮你改善", "{angle}每一晚都在加深", "别忽视{angle}"],
                          ["{Angle} build up every night. {name} helps.", "{Angle} build up every night.",
                           "Don't ignore {angle}."]),
    SlotRole.product_intro: (["认识{name}：{point}", "全新{name}", "{name}"],
                             ["Meet {name}: {point}.", "Meet {name}.", "{name}."]),
    SlotRole.feature_demo: (["{point}，一看就懂", "{point}", "{name}，看得见"],
                            ["{Point}, and you can see it.", "{Point}.", "See {name} work."]),
    SlotRole.brand: (["{name}：{point}", "{point}", "{name}"], ["{name}: {point}.", "{Point}.", "{name}."]),
    SlotRole.spokesperson: (["{name}：{point}", "{point}", "{name}"], ["{name}: {point}.", "{Point}.", "{name}."]),
    SlotRole.social_proof: (["为{audience}而做：{point}", "{point}", "为{audience}而做的{name}", "{name}"],
                            ["Made for {audience}: {point}.", "{Point}.", "{name}, made for {audience}.",
                             "{name}."]),
    SlotRole.offer_cta: (["{offer}，{name}立即下单", "{offer}，立即下单", "{name}，立即下单"],
                         ["{Offer}. Get {name} today.", "{Offer}. Shop now.", "Get {name} today."]),
}
# Hooks that address the audience by name, tried before the family's own (a pain or offer hook already speaks to
# the problem or the deal).
AUDIENCE_HOOKS: dict[str, tuple[list[str], list[str]]] = {
    "fun": (["{audience}，{point}！", "{audience}玩{name}！"], ["{Audience}: {point}!", "{Audience}, play {name}!"]),
    "benefit": (["{audience}都在用：{point}", "{audience}的{name}"], ["For {audience}: {point}.",
                                                                  "{name}, for {audience}."]),
    "curiosity": (["{audience}为什么都在聊{name}？", "{audience}，认识{name}"],
                  ["Why {audience} rave about {name}", "{Audience}, meet {name}."]),
}
NO_OFFER_CTA = (["{name}，现在就入手", "{name}，立即下单"], ["Get {name} today.", "Get {name}."])


@dataclass
class Facts:
    """What a line may say about the product, in one language."""

    name: str
    points: list[str] = field(default_factory=list)
    offer: str | None = None
    audience: str | None = None
    banned: list[str] = field(default_factory=list)
    policy: Policy | None = None  # the claims a line may not make (agent.claims); None: the packaged rules only
    lead: list[str] = field(default_factory=list)  # the product facts' points for this audience (they lead)

    @classmethod
    def of(cls, product: Any, brief: Brief, lang: str) -> Facts:
        """From a cutpilot.products.Product (or None: the brief's product label only)."""
        label = brief.product or ""
        if product is None:
            # an English line cannot say a name that exists only in Chinese: it then leans on the angle
            name = label if (lang == "zh" or not CJK.search(label)) else ""
            return cls(name=name, audience=brief.audience, policy=Policy.of(None, names=[label] if label else []))
        lead = [p for p in (product.points_for(brief.audience, lang) if hasattr(product, "points_for") else [])
                if p]
        return cls(
            name=product.display_name(lang),
            points=list(dict.fromkeys([*lead, *(p for p in product.points(lang) if p)])),
            lead=lead,
            offer=product.offer_for(lang),
            audience=brief.audience or getattr(product, "audience", None),
            banned=list(getattr(product, "banned_claims", []) or []),
            policy=Policy.of(product),
        )


def _angle(brief: Brief, lang: str) -> str:
    a = brief.angle or ""
    if lang == "en" and CJK.search(a):
        return next((en for _, z, en in ANGLES if z == a), "")
    if lang == "zh" and a and not CJK.search(a):
        return next((z for _, z, en in ANGLES if en == a), a)
    return a


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _fill(tmpl: str, values: dict[str, str]) -> str | None:
    """The template with its placeholders filled, or None when one of them has no value."""
    need = set(re.findall(r"\{(\w+)\}", tmpl))
    out = tmpl
    for key in need:
        base = key.lower()
        val = values.get(base, "")
        if not val:
            return None
        out = out.replace("{" + key + "}", _cap(val) if key[0].isupper() else val)
    return out


def _content_words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{4,}|[\u4e00-\u9fff]{2}", text.lower()))


def _forms(point: str, prefer: set[str]) -> list[str]:
    """A selling point as written, then its clauses, the one sharing most words with the brief first
    ("齿轮真的会转，方向盘真的能打" → "齿轮真的会转")."""
    clauses = [c.strip() for c in re.split(r"[，,；;：:]", point) if c.strip()]
    if len(clauses) <= 1:
        return [point]
    return [point, *sorted(clauses, key=lambda c: -len(prefer & _content_words(c)))]


def _clean_point(p: str, lang: str) -> str:
    """A point as it reads mid-sentence: no final stop; in English a lower-case first word unless it is a name
    or an acronym (LEGO, Pro-Xylane)."""
    p = p.strip().rstrip("。.!！")
    if lang == "zh" or not p:
        return p
    first = p.split()[0]
    keep = len(first) > 1 and (first.isupper() or any(ch.isupper() for ch in first[1:]))
    return p if keep else p[:1].lower() + p[1:]


class Copywriter:
    """Writes one ad's lines; remembers which selling points it used so two shots do not say the same thing."""

    def __init__(self, brief: Brief, facts: Facts, lang: str) -> None:
        self.brief, self.facts, self.lang = brief, facts, lang
        self.used_points: set[str] = set()
        self.said: set[str] = set()
        self._brief_words = _content_words(brief.text)

    def _values(self, point: str) -> dict[str, str]:
        aud = self.facts.audience or ""
        if (self.lang == "en") == bool(CJK.search(aud)):  # an audience is said only in its own language
            aud = ""
        return {"name": self.facts.name, "point": point, "angle": _angle(self.brief, self.lang),
                "offer": (self.facts.offer or "").rstrip("。.!！"), "audience": aud}

    def _points(self) -> list[str]:
        """The selling points: the audience's own first (listed for it in the facts, then those with its
        profile's words: play for kids, detail for collectors), then those sharing words with the brief."""
        aud = self.brief.audience
        return sorted(self.facts.points, key=lambda p: (-point_rank(p, aud, self.facts.lead),
                                                        -len(self._brief_words & _content_words(p)))) or [""]

    def line(self, role: SlotRole, seconds: float, *, is_hook: bool = False, name_first: bool = False) -> str:
        """The longest grounded variant that fits the slot; a shortened one (on a word boundary) otherwise."""
        zh = self.lang == "zh"
        addressed: list[str] = []
        if is_hook or role == SlotRole.hook:
            fam = hook_family(self.brief)
            if fam == "offer" and not self.facts.offer:
                fam = "benefit" if self.facts.points else "curiosity"
            if fam == "benefit" and not self.facts.points:
                fam = "curiosity"
            if fam in ("pain", "fun") and not _angle(self.brief, self.lang) \
                    and not (fam == "fun" and self.brief.audience and self._values("")["audience"]):
                fam = "benefit" if self.facts.points else "curiosity"
            variants = HOOKS[fam][0 if zh else 1]
            if self.brief.audience and self._values("")["audience"] and fam in AUDIENCE_HOOKS:  # to them
                addressed = list(AUDIENCE_HOOKS[fam][0 if zh else 1])
                variants = [*addressed, *variants]
            if name_first:  # the user asked for the product's name in the hook
                named = [v for v in variants if "{name}" in v]
                variants = named or [("{name}！" if zh else "{name}!")]
        elif role == SlotRole.offer_cta and not self.facts.offer:
            variants = NO_OFFER_CTA[0 if zh else 1]
        else:
            variants = BODY[role][0 if zh else 1]
        fallback: str | None = None
        with_point = [v for v in variants if "{point}" in v.lower()]
        plain = [v for v in variants if "{point}" not in v.lower()]
        fresh = [p for p in self._points() if p and p not in self.used_points]
        spent = [p for p in self._points() if p and p in self.used_points]
        tries = [(v, "", "") for v in plain if "{angle}" in v.lower() and (is_hook or role == SlotRole.hook)]
        tries += [(v, point, said) for point in fresh for said in _forms(point, self._brief_words)
                  for v in with_point]  # a selling point (whole, else its best clause) beats a plain line
        tries += [(v, "", "") for v in plain if (v, "", "") not in tries]
        tries += [(v, point, said) for point in spent for said in _forms(point, self._brief_words) for v in with_point]
        for v, point, said in tries:
            text = _fill(v, self._values(_clean_point(said, self.lang)))
            if text is None:
                continue
            if self._banned(text):  # a forbidden claim: the next candidate, never a fallback either
                continue
            if v not in addressed:  # cut short, a line addressed to the audience says only who it is for
                fallback = fallback or text
            if within_budget(text, seconds, self.lang) and text not in self.said:
                if point:
                    self.used_points.add(point)
                self.said.add(text)
                return text
        angle = _angle(self.brief, self.lang)
        plain_angle = _cap(angle) + ("！" if zh else ".") if angle and not self._banned(angle) else ""
        text = fallback or self.facts.name or plain_angle
        text = text or ("看看它的表现" if zh else "See it for yourself.")
        cut = trim_to_budget(text, seconds, self.lang)
        name = self.facts.name
        bare = cut.rstrip("。.!！，,:： ")
        if name and name in text and name not in cut and any(
                bare.endswith(name[:k]) for k in range(len(name) - 1, 1, -1)):
            return name  # a product's name is said whole or not at all ("认识乐高机械" names nobody's product)
        if (is_hook or role == SlotRole.hook) and name and cut != text and cut != name:
            rest = text[len(bare):len(bare) + 1] if text.startswith(bare) else ""
            if rest and rest not in "。.!！?？，,;；:：" and within_budget(name, seconds * 1.3, self.lang):
                return name  # a hook cut mid-phrase ("乐高机械组凭") stops nobody: the name alone does
        return cut

    def _banned(self, text: str) -> bool:
        """A product's banned claim, an ad-law absolute term or an efficacy claim without named evidence."""
        policy = self.facts.policy or Policy.of(None, banned=self.facts.banned)
        return not policy.ok(text)
