"""In-memory fakes for fast agent unit tests (never the product default): a ClipSource over the practitioners'
published clip records (shared domain notes §2), ranked by character-bigram overlap."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from agent.state import Candidate
from cutpilot.errors import NotFoundError
from cutpilot.models import ClipFormat, ClipRecord, ContentType, clip_id_for

PRODUCT = "欧莱雅紫熨斗全脸淡纹眼霜"

# (content type, formats, seconds, transcript, description) — the published records
# fmt: off
DOMAIN_ROWS: list[tuple[str, str, float, str, str]] = [
    ("痛点描述", "真人演绎、特效动画", 6.0, "这是侧睡时的你，就像4千克的哑铃在脸上挤压，压垮肌肤弹簧",
     "woman sleeping on her side; a white 4 kg dumbbell appears; skin springs collapse"),
    ("痛点描述", "真人演绎、特效动画", 10.0, "肌肤压力警告，侧睡纹生成中。侧睡压力4公斤。",
     "a woman's face pressed to glass, side-sleep skin; computer, coffee cup, folders weigh 4 kg"),
    ("痛点描述", "直播切片", 10.0,
     "我们其实很多宝宝会侧着睡觉对吧，侧着睡觉的话就相当于在8个小时的时间，脸上压了5公斤重左右的哑铃，所以说我们就把这只眼霜用起来。",
     "male host in white at the livestream desk presenting the product"),
    ("痛点描述", "直播切片", 5.2, "就会比同龄人老个5-6岁，对啊我们不能这样，我们要比同龄人年轻个5-6岁。", "same host"),
    ("品牌介绍", "直播切片", 8.0,
     "欧莱雅做玻色因做了20多年，欧莱雅做玻色因没有平替的。抗皱的、淡纹的、提拉紧致补水保湿修护肌肤的。", "same host"),
    ("产品介绍", "直播切片", 6.2, "全新升级的第三代紫熨斗眼霜，它是一觉淡褪侧睡纹，一支全脸淡纹的眼霜。", "same host"),
    ("痛点描述", "真人演绎、特效动画", 3.4, "知道么，睡觉也是会压出细纹的哦", "brand spokeswoman, long hair, lying on a sofa"),  # noqa: E501
    ("痛点描述", "真人演绎、特效动画", 6.5, "我们的肌肤是有许许多多的小弹簧的，一支像这样子挤压着它们的话，肌肤会失去弹性",  # noqa: E501
     "spokeswoman in white camisole, curly hair, talking to camera, animated effects"),
    ("代言人展示产品", "真人演绎、特效动画", 3.5, "然后这一支呢，现在又、又、又升级啦", "same spokeswoman"),
    ("产品特性展示", "真人演绎、特效动画", 5.7, "多添加了一个功效放大器，能够把肌肤里的小弹簧啊，通通都撑起来", "same spokeswoman"),  # noqa: E501
]


def domain_records(media: Path | None = None, extra: list[ClipRecord] | None = None) -> list[ClipRecord]:
    """The ten published records laid end to end in one (virtual or real) source file."""
    src = str(media or "/nonexistent/source.mp4")
    out, t = [], 0.0
    for ct, fmt, dur, tr, desc in DOMAIN_ROWS:
        out.append(ClipRecord(
            clip_id=clip_id_for("domain", t, t + dur), source=src, source_hash="domain", start=t, end=t + dur,
            language="zh", transcript=tr, description=desc, content_type=ct, format=fmt, product=PRODUCT,
            tags=["淡纹", "眼霜"], label_source="human",
        ))
        t = round(t + dur, 3)
    return out + list(extra or [])


def _grams(text: str) -> set[str]:
    text = text.lower()
    cjk = re.findall(r"[\u4e00-\u9fff]", text)
    words = re.findall(r"[a-z0-9]+", text)
    return {a + b for a, b in itertools.pairwise(cjk)} | set(words)


class MemorySource:
    """ClipSource over a list of records: filters first, then bigram overlap (relevance in 0..1)."""

    def __init__(self, records: list[ClipRecord]) -> None:
        self.records = {r.clip_id: r for r in records}
        self.queries: list[str] = []

    def find(self, query: str, *, content_types: list[ContentType], formats: list[ClipFormat],
             product: str | None, exclude_ids: list[str], limit: int) -> list[Candidate]:
        self.queries.append(query)
        q = _grams(query)
        out = []
        for r in self.records.values():
            if r.clip_id in exclude_ids or (content_types and r.content_type not in content_types):
                continue
            if formats and not set(formats) & set(r.format):
                continue
            if product and r.product != product:
                continue
            g = _grams(r.embed_text())
            rel = 0.3 + 0.7 * (len(q & g) / max(1, len(q))) if q else 0.3
            out.append(Candidate(clip=r, score=rel, relevance=rel))
        out.sort(key=lambda c: (-c.score, c.clip.clip_id))
        return out[:limit]

    def get(self, clip_id: str) -> ClipRecord:
        if clip_id not in self.records:
            raise NotFoundError(f"no clip {clip_id}")
        return self.records[clip_id]

    def products(self) -> list[str]:
        return sorted({r.product for r in self.records.values() if r.product})
