"""The picture's text description: a vision model when configured, else composed from measured facts.

Practitioners search clips by their description (domain notes §1, §3), so offline descriptions state only
what was measured (people and shot size, hands with a product, plain-background still, screen, animation,
indoors / outdoors / night / underwater, colours, light, motion, on-screen text) in the source's language;
a VLM adds implicit features (technique, symbolism, mood).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from cutpilot.models import VisualFacts
from cutpilot.settings import Settings

_ZH_COLOURS = {
    "black": "黑色", "white": "白色", "grey": "灰色", "red": "红色", "orange": "橙色", "yellow": "黄色",
    "green": "绿色", "cyan": "青色", "blue": "蓝色", "purple": "紫色", "pink": "粉色", "brown": "棕色",
    "beige": "米色", "navy": "藏青色", "dark green": "墨绿色",
}
_SHOT_EN = {"close_up": "close-up", "medium": "medium shot", "wide": "wide shot", "full_body": "full-body shot"}
_SHOT_ZH = {"close_up": "特写", "medium": "中景", "wide": "远景", "full_body": "全身镜头"}


class ExplicitElements(BaseModel):
    people: str = Field(description="who is visible, how many, clothing, action")
    objects: str = Field(description="objects, products first")
    scene: str = Field(description="setting / location")
    season: str = Field(description="season or time of day, or 'unclear'")
    composition: str = Field(description="shot size, angle, framing")
    colour: str = Field(description="palette and lighting colour")


class ImplicitElements(BaseModel):
    technique: str = Field(description="lighting, angle, depth of field, camera movement / stabiliser")
    symbolism: str = Field(description="what the picture suggests")
    mood: str = Field(description="overall mood")


class VLMDescription(BaseModel):
    """What the vision model must return (the structure practitioners use)."""

    explicit: ExplicitElements
    implicit: ImplicitElements
    summary: str = Field(description="one or two concrete sentences for search")

    def text(self) -> str:
        e, i = self.explicit, self.implicit
        return (f"{self.summary} | {e.people}; {e.objects}; {e.scene}; {e.season}; {e.composition}; {e.colour} | "
                f"{i.technique}; {i.symbolism}; {i.mood}")


def is_chinese(language: str | None) -> bool:
    return bool(language and language.lower().startswith("zh"))


def compose_offline(facts: VisualFacts, language: str | None) -> str:
    """A short description built only from measured facts, in Chinese for Chinese sources, else English.
    Attributes the measures left "unknown" are not mentioned: a missing phrase is better than a wrong one."""
    zh = is_chinese(language)
    parts: list[str] = []
    if facts.screen == "yes":
        parts.append("电脑或手机屏幕录制画面" if zh else "screen recording of a computer or phone screen")
    if facts.animation == "yes":
        parts.append("动画或动态图形画面" if zh else "animation or motion graphics")
    if facts.white_background:
        parts.append("白底产品静物" if zh else "product still on a white background")
    elif facts.plain_background == "yes":
        parts.append("纯色背景上的产品或物体" if zh else "product or object on a plain background")
    if facts.hands == "yes":
        parts.append("手持或操作产品的手部特写" if zh else "hands holding or handling a product")
    if facts.faces:
        shot = (_SHOT_ZH if zh else _SHOT_EN).get(facts.shot_size, "")
        if zh:
            parts.append(f"{shot}，画面中有{facts.faces}人" if facts.faces > 1 else f"{shot}，一人面对镜头")
        else:
            who = f"{facts.faces} people" if facts.faces > 1 else "one person facing the camera"
            parts.append(f"{shot} of {who}")
    elif facts.person == "yes" and facts.shot_size == "full_body":
        parts.append("全身镜头，画面中有人物" if zh else "full-body shot of a person")
    elif facts.person == "yes":
        parts.append("画面中有人物" if zh else "a person in frame")
    elif facts.person == "no" and not facts.white_background:
        parts.append("无人物的画面" if zh else "no people in frame")
    place = _place(facts, zh)
    if place:
        parts.append(place)
    if facts.dominant_colors:
        if zh:
            parts.append("主色调" + "、".join(_ZH_COLOURS.get(c, c) for c in facts.dominant_colors))
        else:
            parts.append("dominant colours " + ", ".join(facts.dominant_colors))
    light = "bright" if facts.brightness >= 0.6 else "dark" if facts.brightness < 0.3 else "mid-lit"
    parts.append({"bright": "画面明亮", "dark": "画面偏暗", "mid-lit": "光线适中"}[light] if zh else f"{light}")
    if facts.motion >= 0.06:
        parts.append("画面变化快" if zh else "fast movement")
    elif facts.motion >= 0.015:
        parts.append("有轻微运动" if zh else "some movement")
    else:
        parts.append("静止镜头" if zh else "static shot")
    if facts.ocr_text:
        parts.append(f"屏幕文字「{facts.ocr_text[:80]}」" if zh else f'on-screen text "{facts.ocr_text[:80]}"')
    elif facts.text == "yes":
        parts.append("画面中有文字" if zh else "text in the picture")
    return ("，".join(parts) + "。") if zh else ("; ".join(parts) + ".").capitalize()


def _place(facts: VisualFacts, zh: bool) -> str:
    """Underwater, outdoor at night, outdoors or indoors: only what the measures decided."""
    if facts.underwater == "yes":
        return "水下画面" if zh else "underwater"
    if facts.setting == "outdoor" and facts.night == "yes":
        return "夜晚室外" if zh else "outdoors at night"
    if facts.night == "yes":
        return "夜景" if zh else "night scene"
    if facts.setting == "outdoor":
        return "室外" if zh else "outdoors"
    if facts.setting == "indoor":
        return "室内" if zh else "indoors"
    return ""


def describe_vlm(keyframes: Sequence[Path], transcript: str, language: str | None, settings: Settings) -> str:
    """Structured description from the configured vision model; raises ProviderError on any failure."""
    import prompts
    from cutpilot.llm import image_part, invoke_structured, vision_model

    lang = "zh (simplified Chinese)" if is_chinese(language) else (language or "en")
    user: list[dict[str, object]] = [
        {"type": "text", "text": f"language: {lang}\ntranscript (data): <<<{transcript[:1000]}>>>"},
        *[image_part(p) for p in keyframes],
    ]
    messages = [{"role": "system", "content": prompts.read("vlm_describe.md")}, {"role": "user", "content": user}]
    out = invoke_structured(vision_model(settings), VLMDescription, messages)
    return out.text()
