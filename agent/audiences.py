"""Audience and channel profiles (prompts/audiences.yaml): what changes when the same brief is cut for another
audience or platform (千人千面) — the hook family, the music, the selling points that lead, the shots searched for,
the hook's length and the caption density. Pure lookups over a data file; the planner decides nothing here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cutpilot.storyboard import Brief

Family = Literal["pain", "benefit", "fun", "curiosity", "offer"]
Mood = Literal["upbeat", "energetic", "calm", "premium", "fun"]


class AudienceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    match: list[str]
    hook: Family
    mood: Mood
    points: list[str] = Field(default_factory=list)
    shots: dict[str, str] = Field(default_factory=dict)

    def shot_words(self, lang: str) -> str:
        return self.shots.get(lang, self.shots.get("en", ""))


class ChannelProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    match: list[str]
    hook_s: float = Field(ge=1.0, le=3.0)
    pace: Literal["fast", "normal", "calm"] = "normal"
    caption_chars: dict[str, int] = Field(default_factory=dict)
    mood: Mood = "upbeat"

    def caption_limit(self, lang: str) -> int | None:
        return self.caption_chars.get(lang)


class Profiles(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audiences: dict[str, AudienceProfile]
    channels: dict[str, ChannelProfile]


@lru_cache(maxsize=1)
def profiles() -> Profiles:
    raw: dict[str, Any] = yaml.safe_load(resources.files("prompts").joinpath("audiences.yaml").read_text("utf-8"))
    p = Profiles.model_validate(raw)
    for k, a in p.audiences.items():
        a.name = k
    for k, c in p.channels.items():
        c.name = k
    return p


def _matches(text: str, words: list[str]) -> bool:
    low = text.lower()
    tokens = set(re.findall(r"[a-z0-9+\-]+", low))
    for w in words:
        w = str(w)
        if w.isascii():
            if w.lower() in tokens or (" " in w and w.lower() in low):
                return True
        elif w in text:
            return True
    return False


def audience_profile(audience: str | None) -> AudienceProfile | None:
    """The first profile one of whose words the audience contains; None for an audience no profile knows."""
    if not audience:
        return None
    return next((a for a in profiles().audiences.values() if _matches(audience, a.match)), None)


def channel_profile(brief: Brief) -> ChannelProfile | None:
    """The platform norms of the brief's channel or platform (channel first: a batch row's axis)."""
    for where in (brief.channel, brief.platform):
        if where:
            hit = next((c for c in profiles().channels.values() if _matches(where, c.match)), None)
            if hit is not None:
                return hit
    return None


def point_rank(point: str, audience: str | None, facts_points: list[str]) -> int:
    """How strongly a selling point speaks to the audience: 2 when the product facts list it for this audience,
    1 when it contains one of the profile's words, else 0."""
    if point in facts_points:
        return 2
    prof = audience_profile(audience)
    return 1 if prof is not None and _matches(point, prof.points) else 0
