"""A team's own labels (优惠促单, 模特展示, 买家秀 …) mapped onto the canonical taxonomy, the word kept beside it.

Teams annotate in their own vocabulary; refusing those words stopped whole ingests. A word maps exactly through
the canonical names and aliases in cutpilot.models; otherwise by embedding similarity (the library's text
embedder) to the label prototypes of prompts/labels/*.yaml (their sentences, keywords and the aliases);
otherwise it stays a custom label (content type `other`, no canonical format). The team's word is always kept
on the clip, so filters and `cutpilot labels` can speak the team's language.

Similarity accepts the nearest class only when it is both close (MIN_SIMILARITY) and clearly ahead of the next
class (MIN_MARGIN): short words sit near several prototypes, and a wrong canonical label is worse than a custom
one. Both numbers were chosen with `measure()` on the hand-written team words of MEASURE_WORDS.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cutpilot import models as M
from cutpilot.errors import InputError
from cutpilot.models import ClipFormat, ClipRecord, ContentType

if TYPE_CHECKING:
    from index.embed import TextEmbedder

MIN_SIMILARITY = 0.6
MIN_MARGIN = 0.1
Kind = Literal["content_type", "format"]
How = Literal["canonical", "alias", "similar", "custom"]

# Team words with the canonical label a practitioner would give them ("-" = none fits). Used by `measure()`
# (and tests) to choose MIN_SIMILARITY / MIN_MARGIN; none of them is an alias.
MEASURE_WORDS: dict[Kind, list[tuple[str, str]]] = {
    "content_type": [
        ("优惠促单", "offer_cta"), ("限时秒杀", "offer_cta"), ("下单链接", "offer_cta"), ("福利价", "offer_cta"),
        ("买家秀", "social_proof"), ("好评晒单", "social_proof"), ("达人推荐", "social_proof"),
        ("痛点引入", "pain_point"), ("上身效果", "usage_demo"), ("使用教程", "usage_demo"), ("开箱", "usage_demo"),
        ("成分解析", "feature_demo"), ("品牌故事", "brand_intro"), ("新品首发", "product_intro"),
        ("limited time deal", "offer_cta"), ("customer reviews", "social_proof"),
        ("猫咪", "-"), ("天气预报", "-"), ("随便", "-"), ("蓝色", "-"), ("空镜", "-"), ("片尾", "-"),
    ],
    "format": [
        ("上身效果", "model_showcase"), ("模特试穿", "model_showcase"), ("穿搭展示", "model_showcase"),
        ("产品特写", "product_still"), ("细节展示", "product_display"), ("品牌宣传片", "brand_film"),
        ("直播回放", "livestream"), ("口播", "live_action"), ("达人口播", "live_action"), ("实拍", "live_action"),
        ("开箱视频", "ugc"), ("三维动画", "effects_animation"),
        ("猫咪", "-"), ("天气预报", "-"), ("随便", "-"), ("蓝色", "-"), ("手绘", "-"),
    ],
}  # fmt: skip


@dataclass(frozen=True)
class LabelMatch:
    """What one team word means: its canonical value (None: a custom format), how that was decided, the score."""

    word: str
    kind: Kind
    canonical: str | None
    how: How
    score: float | None = None
    nearest: str | None = None

    @property
    def label(self) -> str | None:
        """The word to keep on the clip: anything the team wrote except the canonical name itself."""
        return None if self.how == "canonical" else self.word

    def warning(self) -> str | None:
        """One line for the ingest report when the word was not an exact name or alias."""
        what = "content type" if self.kind == "content_type" else "format"
        if self.how == "similar":
            return (f"{what} {self.word!r} read as {self.canonical} (similarity {self.score:.2f}); "
                    "the team label is kept")
        if self.how == "custom":
            near = f" (nearest {self.nearest} {self.score:.2f})" if self.nearest and self.score is not None else ""
            into = "content type other" if self.kind == "content_type" else "no canonical format"
            return f"{what} {self.word!r} matches no canonical {what}{near}; kept as a custom label ({into})"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.word, "maps_to": self.canonical, "how": self.how,
                "score": None if self.score is None else round(self.score, 3)}


class _Protos:
    def __init__(self, names: list[str], owner: list[int], vectors: np.ndarray) -> None:
        self.names, self.owner, self.vectors = names, owner, vectors

    def nearest(self, vec: np.ndarray) -> list[tuple[str, float]]:
        sims = self.vectors @ vec
        best: dict[int, float] = {}
        for row, cls in enumerate(self.owner):
            best[cls] = max(best.get(cls, -1.0), float(sims[row]))
        return sorted(((self.names[c], s) for c, s in best.items()), key=lambda x: -x[1])


def _prototype_texts(yaml_name: str, aliases: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(class name, text) rows: the yaml sentences and keywords of two or more characters, the class name as a
    phrase, and every alias (aliases are the best short-word prototypes there are)."""
    import yaml

    import prompts

    data = yaml.safe_load(prompts.read(f"labels/{yaml_name}"))
    classes, texts = [], []
    for name, spec in (data or {}).items():
        rows = [str(t) for lang in ("zh", "en") for t in (spec.get(lang) or [])]
        rows += [str(k) for k in (spec.get("keywords") or []) if len(str(k)) >= 2]
        rows.append(str(name).replace("_", " "))
        classes += [str(name)] * len(rows)
        texts += rows
    for alias, value in aliases.items():
        classes.append(str(value.value))
        texts.append(alias)
    return classes, texts


class TeamLabelMapper:
    """Maps team words for one embedder (prototype vectors built once, each word embedded once)."""

    def __init__(self, embedder: TextEmbedder | None) -> None:
        self.embedder = embedder
        self._protos: dict[Kind, _Protos] = {}
        self._cache: dict[tuple[Kind, str], LabelMatch] = {}
        self._lock = threading.Lock()

    def _prototypes(self, kind: Kind) -> _Protos:
        if kind not in self._protos:
            assert self.embedder is not None
            if kind == "content_type":
                classes, texts = _prototype_texts("content_types.yaml", M.CONTENT_TYPE_ALIASES)
            else:
                classes, texts = _prototype_texts("formats.yaml", M.FORMAT_ALIASES)
            names = list(dict.fromkeys(classes))
            owner = [names.index(c) for c in classes]
            self._protos[kind] = _Protos(names, owner, self.embedder.embed(texts))
        return self._protos[kind]

    def ranked(self, kind: Kind, word: str) -> list[tuple[str, float]]:
        """Canonical classes by similarity to `word`, best first (empty without an embedder)."""
        if self.embedder is None:
            return []
        with self._lock:
            protos = self._prototypes(kind)
        return protos.nearest(self.embedder.embed([word])[0])

    def map(self, kind: Kind, word: str) -> LabelMatch:
        word = word.strip()
        if not word:
            raise InputError(f"empty {'content type' if kind == 'content_type' else 'format'}; give a name or a "
                             "team's word (see `cutpilot labels`)")
        key = (kind, word)
        if key in self._cache:
            return self._cache[key]
        exact = M.lookup_content_type(word) if kind == "content_type" else M.lookup_format(word)
        if exact is not None:
            plain = " ".join(word.lower().replace("-", " ").replace("_", " ").split())
            how: How = "canonical" if plain == exact.value.replace("_", " ") else "alias"
            match = LabelMatch(word, kind, exact.value, how)
        else:
            match = self._similar(kind, word)
        self._cache[key] = match
        return match

    def _similar(self, kind: Kind, word: str) -> LabelMatch:
        custom = ContentType.other.value if kind == "content_type" else None
        ranked = self.ranked(kind, word)
        if not ranked:
            return LabelMatch(word, kind, custom, "custom")
        (best, score), runner = ranked[0], (ranked[1][1] if len(ranked) > 1 else -1.0)
        if best != ContentType.other.value and score >= MIN_SIMILARITY and score - runner >= MIN_MARGIN:
            return LabelMatch(word, kind, best, "similar", score, best)
        return LabelMatch(word, kind, custom, "custom", score, best)

    def content_type(self, word: str) -> LabelMatch:
        return self.map("content_type", word)

    def formats(self, value: str | list[Any]) -> list[LabelMatch]:
        """Each word of a format value ('模特展示、手绘' or a list), in order, once each."""
        out: list[LabelMatch] = []
        for item in M.format_items(value):
            m = self.map("format", str(item.value if isinstance(item, ClipFormat) else item))
            if m.word and all(m.word != o.word for o in out):
                out.append(m)
        return out


def content_type_fields(match: LabelMatch) -> dict[str, Any]:
    """The record fields a team's content-type word sets: the canonical value and the word itself."""
    return {"content_type": ContentType(match.canonical or ContentType.other.value), "content_type_label": match.label}


def format_fields(matches: list[LabelMatch]) -> dict[str, Any]:
    """The record fields a team's format words set: the canonical formats they mean (a custom word adds none)
    and every word but the canonical names."""
    canon = list(dict.fromkeys(ClipFormat(m.canonical) for m in matches if m.canonical))
    return {"format": canon, "format_labels": [m.word for m in matches if m.label]}


_MAPPERS: dict[int, TeamLabelMapper] = {}
_MAPPERS_LOCK = threading.Lock()


def mapper_for(embedder: TextEmbedder | None) -> TeamLabelMapper:
    """One mapper per embedder instance (None: names and aliases only, every other word is custom)."""
    with _MAPPERS_LOCK:
        key = id(embedder)
        if key not in _MAPPERS:
            _MAPPERS[key] = TeamLabelMapper(embedder)
        return _MAPPERS[key]


def measure(embedder: TextEmbedder) -> dict[str, Any]:
    """How the accept rule does on MEASURE_WORDS: per word the nearest class, its score and margin, and the
    totals (mapped right, mapped wrong, kept custom when a class fitted, kept custom when none did)."""
    mapper = TeamLabelMapper(embedder)
    rows: list[dict[str, Any]] = []
    totals = {"right": 0, "wrong": 0, "custom_missed": 0, "custom_right": 0}
    for kind, words in MEASURE_WORDS.items():
        for word, want in words:
            ranked = mapper.ranked(kind, word)
            m = mapper.map(kind, word)
            got = m.canonical if m.how == "similar" else "-"
            if got == "-":
                totals["custom_right" if want == "-" else "custom_missed"] += 1
            else:
                totals["right" if got == want else "wrong"] += 1
            rows.append({"kind": kind, "word": word, "want": want, "got": got, "nearest": ranked[0][0],
                         "score": round(ranked[0][1], 3), "margin": round(ranked[0][1] - ranked[1][1], 3)})
    return {"rows": rows, "totals": totals, "min_similarity": MIN_SIMILARITY, "min_margin": MIN_MARGIN}


def _zh_names(aliases: dict[str, Any], value: str) -> list[str]:
    return [a for a, v in aliases.items() if v.value == value and any("\u4e00" <= ch <= "\u9fff" for ch in a)]


def summary(records: Iterable[ClipRecord], mapper: TeamLabelMapper) -> dict[str, Any]:
    """The taxonomy with clip counts and every team label in the library mapped onto it (one pass over records).

    A team label's mapping is computed again by `mapper` (the same rule ingest used); custom content-type words
    sit under `other`, custom format words only in the flat `team_labels` list (maps_to null)."""
    clips = 0
    counts: dict[Kind, Counter[str]] = {"content_type": Counter(), "format": Counter()}
    words: dict[Kind, Counter[str]] = {"content_type": Counter(), "format": Counter()}
    for r in records:
        clips += 1
        counts["content_type"][r.content_type.value] += 1
        counts["format"].update({f.value for f in r.format})
        if r.content_type_label:
            words["content_type"][r.content_type_label] += 1
        words["format"].update(set(r.format_labels))
    team: list[dict[str, Any]] = []
    for kind in ("content_type", "format"):
        for word, n in sorted(words[kind].items(), key=lambda x: (-x[1], x[0])):
            team.append({"field": kind, **mapper.map(kind, word).to_json(), "clips": n})

    def entries(kind: Kind, names: list[str], aliases: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for name in names:
            zh = _zh_names(aliases, name)
            out.append({"name": name, "zh": zh[0] if zh else None, "aliases": zh[1:], "clips": counts[kind][name],
                        "team_labels": [{k: t[k] for k in ("label", "how", "score", "clips")}
                                        for t in team if t["field"] == kind and t["maps_to"] == name]})
        return out

    return {"clips": clips,
            "content_types": entries("content_type", [c.value for c in ContentType], M.CONTENT_TYPE_ALIASES),
            "formats": entries("format", [f.value for f in ClipFormat], M.FORMAT_ALIASES),
            "team_labels": team}


def require_known(matches: list[LabelMatch], library: Any) -> None:
    """A custom word typed into an edit must already be a team label in the library: an edit is where typos happen,
    and new team words come in through `ingest --annotations`, which warns about each."""
    from index.search import SearchFilters

    for m in matches:
        if m.how != "custom":
            continue
        probe = SearchFilters(content_type_labels=[m.word]) if m.kind == "content_type" else \
            SearchFilters(format_labels=[m.word])
        if library.count(probe) == 0:
            what = "content type" if m.kind == "content_type" else "format"
            raise InputError(f"unknown {what} {m.word!r}: no canonical name, alias or team label in the library "
                             "means it; see `cutpilot labels` (new team words come in with `ingest --annotations`)")
