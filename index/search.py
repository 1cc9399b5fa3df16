"""Hybrid clip search: dense text similarity + BM25 keywords (+ CLIP image similarity), fused with RRF.

Why this shape: dense multilingual vectors find clips across languages ("side sleeping" ↔ 侧睡), keywords
pin exact product words and slang that embeddings blur (trend tags keep the speakers' own words), and
reciprocal-rank fusion needs no score calibration between the two. Chinese has no spaces, so BM25 tokens
come from jieba; the engine applies IDF (sparse vector with the IDF modifier), we supply term frequencies.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator

from cutpilot.models import ClipFormat, ClipRecord, ContentType, format_items, lookup_content_type, lookup_format
from index.store import IMAGE, SPARSE, TEXT, Conditions, VectorQuery, point_id

if TYPE_CHECKING:
    from index.clipvec import ImageEmbedder
    from index.embed import TextEmbedder
    from index.store import ClipStore

BM25_ID = "bm25:jieba-crc32-v1"
BM25_K, BM25_B, BM25_AVG_LEN = 1.2, 0.75, 40.0
RRF_K = 60

_STOP = {
    # zh function words and particles
    "的", "了", "是", "在", "我", "我们", "你", "他", "她", "它", "就", "也", "都", "和", "与", "把", "被",
    "这", "那", "这是", "一个", "吗", "呢", "啊", "吧", "哦", "呀", "嘛", "对", "会", "要", "有", "很",
    # en stop words
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "and", "or", "is", "are", "was", "be", "it",
    "its", "this", "that", "with", "as", "by", "from", "her", "his", "she", "he", "you", "your", "we",
}  # fmt: skip
_WORD = re.compile(r"^[0-9a-z\u3400-\u9fff]+$")
_ASCII = re.compile(r"^[a-z]+$")
def _cut(text: str) -> list[str]:
    from cutpilot.zhseg import search_tokens

    return search_tokens(text)


def _stem(word: str) -> str:
    """A tiny English suffix stripper: enough for sleeping/sleeps/sleep and wrinkles/wrinkle to meet."""
    if len(word) <= 4 or not _ASCII.match(word):
        return word
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word.rstrip("e") if len(word) > 4 else word


def tokens(text: str) -> list[str]:
    """Keyword tokens of zh/en text: jieba search-mode words, lower-cased, stemmed, stop words dropped."""
    out = []
    for raw in _cut(text.lower()):
        tok = raw.strip()
        if not tok or tok in _STOP or not _WORD.match(tok):
            continue
        out.append(_stem(tok))
    return out


def _index(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF


def bm25_document(text: str) -> tuple[list[int], list[float]]:
    """Sparse document vector: BM25 term-frequency saturation; the engine multiplies in IDF at query time."""
    toks = tokens(text)
    if not toks:
        return [], []
    tf = Counter(_index(t) for t in toks)
    norm = BM25_K * (1 - BM25_B + BM25_B * len(toks) / BM25_AVG_LEN)
    idx = sorted(tf)
    return idx, [tf[i] * (BM25_K + 1) / (tf[i] + norm) for i in idx]


def bm25_query(text: str) -> tuple[list[int], list[float]]:
    """Sparse query vector: each distinct token once, weight 1."""
    idx = sorted({_index(t) for t in tokens(text)})
    return idx, [1.0] * len(idx)


class SearchFilters(BaseModel):
    """Payload filters shared by search, listing and the planner.

    A content type or format given as a canonical name or alias filters on the canonical field (aliases are exact
    synonyms); any other word is a team's own label and filters on the team-label field, never on the canonical
    value it maps to: a team word may be narrower than its canonical class (优惠促单 ⊂ offer_cta), and a custom word
    maps to `other`, which would match every unlabelled clip. Within one option the values are OR-ed."""

    product: str | None = None
    content_types: list[ContentType] = Field(default_factory=list)
    formats: list[ClipFormat] = Field(default_factory=list)
    content_type_labels: list[str] = Field(default_factory=list)
    format_labels: list[str] = Field(default_factory=list)
    min_dur: float | None = Field(default=None, ge=0)
    max_dur: float | None = Field(default=None, ge=0)
    exclude_ids: list[str] = Field(default_factory=list)
    include_generated: bool = True

    @model_validator(mode="before")
    @classmethod
    def _team_words(cls, data: Any) -> Any:
        """Move words that are no canonical name or alias from content_types / formats to the label lists."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, label_key in (("content_types", "content_type_labels"), ("formats", "format_labels")):
            value = data.get(key)
            if value is None or value == "":
                value = []
            elif isinstance(value, ContentType | ClipFormat):
                value = [value]
            elif isinstance(value, str):
                value = format_items(value) if key == "formats" else [value]
            canon: list[Any] = []
            words = list(data.get(label_key) or [])
            for x in value:
                hit = (lookup_content_type(x) if key == "content_types" else lookup_format(x)) \
                    if isinstance(x, str) else x
                if hit is None:
                    words.append(x.strip())
                else:
                    canon.append(hit)  # an enum, or a non-text value the field's own validation names
            data[key] = canon
            data[label_key] = list(dict.fromkeys(w for w in words if w))
        return data

    def to_conditions(self) -> Conditions:
        return Conditions(
            product=self.product or None,
            content_types=[c.value for c in self.content_types],
            formats=[f.value for f in self.formats],
            content_type_labels=list(self.content_type_labels),
            format_labels=list(self.format_labels),
            min_dur=self.min_dur,
            max_dur=self.max_dur,
            exclude_ids=list(self.exclude_ids),
            include_generated=self.include_generated,
        )


class SearchHit(BaseModel):
    """One ranked clip: fused score plus each ranker's own score (text cosine, bm25, image cosine, rrf)."""

    clip: ClipRecord
    score: float
    scores: dict[str, float] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        c = self.clip
        return {
            "clip_id": c.clip_id,
            "source": c.source,
            "start": c.start,
            "end": c.end,
            "duration": c.duration,
            "product": c.product,
            "content_type": c.content_type.value,
            "format": [f.value for f in c.format],
            "content_type_label": c.content_type_label,
            "format_labels": list(c.format_labels),
            "language": c.language,
            "transcript": c.transcript,
            "description": c.description,
            "tags": list(c.tags),
            "trend_tags": list(c.trend_tags),
            "keyframes": list(c.keyframes),
            "generated": c.generated,
            "score": round(self.score, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
        }


def rrf(
    ranked: Mapping[str, Sequence[tuple[str, float]]], weights: dict[str, float], k: int = RRF_K
) -> list[tuple[str, float, dict[str, float]]]:
    """Weighted reciprocal-rank fusion: score = Σ w / (k + rank). Returns (id, fused, raw scores) best first."""
    fused: dict[str, float] = {}
    raw: dict[str, dict[str, float]] = {}
    for name, hits in ranked.items():
        w = weights.get(name, 1.0)
        for rank, (pid, score) in enumerate(hits, start=1):
            fused[pid] = fused.get(pid, 0.0) + w / (k + rank)
            raw.setdefault(pid, {})[name] = score
    order = sorted(fused, key=lambda p: (-fused[p], p))
    return [(p, fused[p], raw[p]) for p in order]


def hybrid_search(
    store: ClipStore,
    embedder: TextEmbedder,
    query: str,
    filters: SearchFilters | None = None,
    *,
    image: Path | None = None,
    image_embedder: ImageEmbedder | None = None,
    image_weight: float = 0.7,
    limit: int = 10,
) -> list[SearchHit]:
    """Rank clips for `query` (and optionally an example image) under `filters`."""
    cond = (filters or SearchFilters()).to_conditions()
    depth = max(50, limit * 5)
    queries: list[VectorQuery] = []
    weights: dict[str, float] = {}
    text_share = 1.0
    if image is not None and image_embedder is not None and store.meta.image_model:
        vec = image_embedder.embed_images([image])[0]
        queries.append(VectorQuery(IMAGE, dense=vec.tolist()))
        weights[IMAGE] = image_weight
        text_share = 1.0 - image_weight
    if query.strip():
        queries.append(VectorQuery(TEXT, dense=embedder.embed([query])[0].tolist()))
        weights[TEXT] = text_share / 2 if IMAGE in weights else 1.0
        sparse = bm25_query(query)
        if sparse[0]:
            queries.append(VectorQuery(SPARSE, sparse=sparse))
            weights[SPARSE] = weights[TEXT]
    if not queries:
        return []
    lists = store.query(queries, cond, limit=depth)
    ranked = {q.using: hits for q, hits in zip(queries, lists, strict=True)}
    fused = rrf(ranked, weights)[:limit]
    payloads = store.retrieve([pid for pid, _, _ in fused])
    from index.library import record_from_payload

    by_id = {point_id(str(p["clip_id"])): p for p in payloads}
    hits: list[SearchHit] = []
    for pid, score, raw in fused:
        payload = by_id.get(pid)
        if payload is None:
            continue
        hits.append(SearchHit(clip=record_from_payload(payload), score=score, scores={**raw, "rrf": score}))
    return hits
