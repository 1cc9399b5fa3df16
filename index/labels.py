"""Clip labels: content type, format, stable tags and trend tags.

Offline this is a real classifier, not a constant: the clip's text is embedded with the library's text
embedder and compared with labelled zh + en prototypes (prompts/labels/*.yaml); transcript keywords and
measured visual facts add evidence. With an LLM configured, the LLM labels and explains (falling back to the
offline classifier on any provider failure).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, Field

from cutpilot.models import ClipFormat, ContentType, VisualFacts, parse_content_type, parse_formats
from cutpilot.settings import Settings

_STOP_TEXT = (
    "a an the and or but so to of in on at for with from by is are was were be been it its this that these those "
    "i you he she we they my your our their me him her us them not no do does did can could will would should "
    "what which who how when where there here just very really all any some more most as if then than about "
    "up down out over into also too only own same such"
)
_EN_STOP = set(_STOP_TEXT.split())
_KEYWORD_WEIGHT = 0.08
_MIN_SIM = 0.3  # below this raw similarity nothing matches: 'other' (JFK's speech scores 0.22)
# a description's own words that make animation / a screen capture plausible without a measured fact
_ANIMATION_WORDS = ("animat", "cartoon", "motion graphic", "3d render", "cgi", "动画", "卡通", "特效", "动态图形")
_PERSON_EN = re.compile(r"\b(?:person|people|man|men|woman|women|host|spokes\w*|girl|boy|face|selfie)\b")
_PERSON_ZH = ("主播", "模特", "真人", "人物", "代言人", "女", "男", "自拍")
_PERSON_FORMATS = {ClipFormat.live_action, ClipFormat.ugc, ClipFormat.livestream, ClipFormat.model_showcase}
_SCREEN_WORDS = ("screen recording", "screen capture", "screencast", "terminal", "录屏", "屏幕录制", "截屏")


class Labels(BaseModel):
    content_type: ContentType = ContentType.other
    format: list[ClipFormat] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    trend_tags: list[str] = Field(default_factory=list)
    label_source: str = "offline"
    explanation: str = ""
    scores: dict[str, float] = Field(default_factory=dict)


class LLMLabels(BaseModel):
    """What the LLM must return."""

    content_type: str
    format: list[str]
    tags: list[str]
    trend_tags: list[str]
    explanation: str


def _load_yaml(name: str) -> dict[str, Any]:
    import prompts

    data = yaml.safe_load(prompts.read(f"labels/{name}"))
    if not isinstance(data, dict):
        raise ValueError(f"prompts/labels/{name} must be a mapping")
    return data


@dataclass
class _Protos:
    names: list[str]
    owner: list[int]          # prototype row → class index
    vectors: np.ndarray       # (n_protos, dim)
    keywords: list[list[str]] = field(default_factory=list)


class OfflineLabeler:
    """Embedding-similarity classifier over labelled prototypes; built once per embedder."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.ct = self._build(_load_yaml("content_types.yaml"))
        self.fmt = self._build(_load_yaml("formats.yaml"))
        self.tag_rules: dict[str, list[str]] = {k: list(v or []) for k, v in _load_yaml("tags.yaml").items()}

    def _build(self, data: dict[str, Any]) -> _Protos:
        names, owner, texts, kws = [], [], [], []
        for i, (name, spec) in enumerate(data.items()):
            names.append(name)
            kws.append([str(k).lower() for k in (spec.get("keywords") or [])])
            for lang in ("zh", "en"):
                for t in spec.get(lang) or []:
                    owner.append(i)
                    texts.append(str(t))
        return _Protos(names, owner, self.embedder.embed(texts), kws)

    @staticmethod
    def _class_scores(protos: _Protos, vec: np.ndarray) -> np.ndarray:
        sims = protos.vectors @ vec
        out = np.full(len(protos.names), -1.0, dtype=np.float32)
        for row, cls in enumerate(protos.owner):
            out[cls] = max(out[cls], sims[row])
        return out

    @staticmethod
    def _keyword_hits(keywords: list[str], text: str) -> list[str]:
        low = text.lower()
        hits = []
        for k in keywords:
            if re.fullmatch(r"[a-z0-9' -]+", k):
                if re.search(rf"\b{re.escape(k)}\b", low):
                    hits.append(k)
            elif k in low:
                hits.append(k)
        return hits

    def label(self, transcript: str, description: str, facts: VisualFacts | None, language: str | None) -> Labels:
        text = " ".join(p for p in (transcript, description) if p).strip()
        speech_vec, pic_vec = self.embedder.embed([transcript or description or " ", description or " "])
        # content type: what is *said* matters most; the picture decides only for silent clips
        raw = self._class_scores(self.ct, speech_vec)
        scores = raw.copy()
        why: list[str] = []
        hit_classes: set[int] = set()
        for i, kws in enumerate(self.ct.keywords):
            hits = self._keyword_hits(kws, transcript)
            if hits:
                hit_classes.add(i)
                scores[i] += _KEYWORD_WEIGHT * min(3, len(hits))
                why.append(f"{self.ct.names[i]}: {', '.join(hits[:3])}")
        best = int(np.argmax(scores))
        confident = raw.max() >= _MIN_SIM or (best in hit_classes and scores[best] >= _MIN_SIM)
        ctype = ContentType(self.ct.names[best]) if confident and text else ContentType.other
        fscores = self._class_scores(self.fmt, pic_vec)
        formats = self._formats(fscores, facts, description)
        ranked = sorted(zip(self.ct.names, scores.tolist(), strict=True), key=lambda x: -x[1])[:3]
        explanation = "nearest prototypes " + ", ".join(f"{n} {s:.2f}" for n, s in ranked)
        if why:
            explanation += "; keywords " + "; ".join(why)
        return Labels(
            content_type=ctype, format=formats, tags=self.stable_tags(text, facts),
            trend_tags=trend_tags(transcript, language), label_source="offline", explanation=explanation,
            scores={n: round(float(s), 3) for n, s in zip(self.ct.names, scores.tolist(), strict=True)},
        )

    def _formats(self, fscores: np.ndarray, facts: VisualFacts | None, description: str = "") -> list[ClipFormat]:
        """Measured facts first (they are evidence), embedding similarity for the rest, never a format without
        support: no animation, screen recording or person format unless measured or named in the description."""
        out: list[ClipFormat] = []
        ruled_out = self._unsupported(facts, description)
        if facts is not None:
            if facts.screen == "yes" or (facts.screen == "unknown" and facts.ocr_text and not facts.faces
                                         and facts.motion < 0.01 and len(facts.ocr_text) > 40):
                out.append(ClipFormat.screen_recording)
            if facts.animation == "yes":
                out.append(ClipFormat.effects_animation)
            if facts.hands == "yes":
                out.append(ClipFormat.product_display)
            if facts.white_background or facts.plain_background == "yes":
                out.append(ClipFormat.product_still)
            if facts.person == "yes" and facts.shot_size == "full_body" and facts.text != "yes":
                out.append(ClipFormat.model_showcase)
            if facts.faces:
                out.append(ClipFormat.live_action)
        if not out:
            order = [ClipFormat(self.fmt.names[i]) for i in np.argsort(-fscores)]
            out.append(next((f for f in order if f not in ruled_out), order[0]))
        return out

    def _unsupported(self, facts: VisualFacts | None, description: str) -> set[ClipFormat]:
        """Formats neither the measures nor the description's own words support (see _formats)."""
        if facts is None:
            return set()
        out = _ruled_out(facts)
        low = description.lower()
        if facts.animation != "yes" and not any(w in low for w in _ANIMATION_WORDS):
            out.add(ClipFormat.effects_animation)
        if facts.screen != "yes" and not any(w in low for w in _SCREEN_WORDS):
            out.add(ClipFormat.screen_recording)
        said = low.replace("no people", "").replace("无人物", "")
        someone = _PERSON_EN.search(said) or any(w in said for w in _PERSON_ZH)
        if not facts.faces and facts.person != "yes" and not someone:
            out |= _PERSON_FORMATS  # a host, a model, a user filming themself: not without someone seen
        return out

    def stable_tags(self, text: str, facts: VisualFacts | None) -> list[str]:
        tags = [tag for tag, kws in self.tag_rules.items() if self._keyword_hits([k.lower() for k in kws], text)]
        if facts is not None:
            if facts.white_background:
                tags.append("white-background")
            if facts.shot_size == "close_up":
                tags.append("close-up")
            if facts.faces or facts.person == "yes":
                tags.append("person")
            yes = {"full-body": facts.shot_size == "full_body", "hands": facts.hands == "yes",
                   "plain-background": facts.plain_background == "yes" and not facts.white_background,
                   "screen": facts.screen == "yes", "animation": facts.animation == "yes",
                   "indoor": facts.setting == "indoor", "outdoor": facts.setting == "outdoor",
                   "night": facts.night == "yes", "underwater": facts.underwater == "yes"}
            tags.extend(t for t, on in yes.items() if on)
        return tags


def _ruled_out(facts: VisualFacts) -> set[ClipFormat]:
    """Formats the measured picture contradicts (an "unknown" attribute rules nothing out)."""
    out: set[ClipFormat] = set()
    if facts.animation == "no":
        out.add(ClipFormat.effects_animation)
    if facts.screen == "no":
        out.add(ClipFormat.screen_recording)
    if facts.motion >= 0.06:  # a still is still: a busy, fast-changing picture is no packshot
        out.add(ClipFormat.product_still)
    if facts.person == "no" and not facts.faces:
        out |= _PERSON_FORMATS
    return out


def trend_tags(transcript: str, language: str | None, k: int = 3) -> list[str]:
    """Salient phrases kept in the speakers' own words (never normalised): jieba TF-IDF for Chinese,
    the most frequent content-word bigrams / words for other languages."""
    t = transcript.strip()
    if not t:
        return []
    if re.search(r"[\u4e00-\u9fff]", t):
        from cutpilot.zhseg import keywords

        pos = ("n", "nr", "ns", "nz", "v", "vn", "a", "an", "i", "l", "eng")
        return [w for w in keywords(t, k, pos) if len(w) >= 2 and w in t]
    words = re.findall(r"[A-Za-z][A-Za-z'-]+", t)
    content = [w for w in words if w.lower() not in _EN_STOP and len(w) > 2]
    counts: dict[str, int] = {}
    order: dict[str, int] = {}
    for i, (a, b) in enumerate(itertools.pairwise(words)):
        if a.lower() in _EN_STOP or b.lower() in _EN_STOP:
            continue
        phrase = f"{a} {b}"
        counts[phrase] = counts.get(phrase, 0) + 2
        order.setdefault(phrase, i)
    for i, w in enumerate(content):
        counts[w] = counts.get(w, 0) + 1
        order.setdefault(w, i)
    ranked = sorted(counts, key=lambda p: (-counts[p], -len(p), order[p]))
    out: list[str] = []
    for p in ranked:
        if any(p in q or q in p for q in out):
            continue
        out.append(p)
        if len(out) == k:
            break
    return out


_LABELERS: dict[int, OfflineLabeler] = {}


def offline_labeler(embedder: Any) -> OfflineLabeler:
    """One labeler per embedder instance (prototype vectors are computed once)."""
    key = id(embedder)
    if key not in _LABELERS:
        _LABELERS[key] = OfflineLabeler(embedder)
    return _LABELERS[key]


def label_llm(transcript: str, description: str, facts: VisualFacts | None, language: str | None,
              settings: Settings) -> Labels:
    """LLM labels with an explanation; raises ProviderError (or InputError on an unknown label)."""
    import prompts
    from cutpilot.llm import chat_model, invoke_structured

    data = (f"language: {language or 'unknown'}\ntranscript (data): <<<{transcript[:1500]}>>>\n"
            f"description (data): <<<{description[:1000]}>>>\n"
            f"visual facts: {facts.model_dump_json() if facts else '{}'}")
    messages = [{"role": "system", "content": prompts.read("llm_label.md")}, {"role": "user", "content": data}]
    out = invoke_structured(chat_model(settings), LLMLabels, messages)
    return Labels(
        content_type=parse_content_type(out.content_type), format=parse_formats(out.format),
        tags=[t.strip() for t in out.tags if t.strip()][:8],
        trend_tags=[t.strip() for t in out.trend_tags if t.strip()][:5],
        label_source="llm", explanation=out.explanation.strip(),
    )
