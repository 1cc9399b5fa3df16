"""A small annotated clip library: the ten practitioner records of the domain notes plus distractors."""

from __future__ import annotations

from cutpilot.models import ClipRecord, clip_id_for

EYE = "欧莱雅紫熨斗全脸淡纹眼霜"

# (content, format, start, end, transcript, description, tags)
_EYE_ROWS = [
    (
        "痛点描述",
        "真人演绎、特效动画",
        0.0,
        6.0,
        "这是侧睡时的你，就像4千克的哑铃在脸上挤压，压垮肌肤弹簧",
        "woman sleeping on her side; a white 4 kg dumbbell appears; animation shows skin springs collapsing",
        ["侧睡纹", "淡纹"],
    ),
    (
        "痛点描述",
        "真人演绎、特效动画",
        6.0,
        16.0,
        "肌肤压力警告，侧睡纹生成中。侧睡压力4公斤。",
        "a woman's face pressed to glass; computer, coffee cup, folders and a plant appear, together 4 kg",
        ["侧睡纹"],
    ),
    (
        "痛点描述",
        "直播切片",
        16.0,
        26.0,
        "我们其实很多宝宝会侧着睡觉对吧，侧着睡觉的话就相当于在8个小时的时间，脸上压了5公斤重左右的哑铃，所以说我们就把这只眼霜用起来。",
        "male host in white at the livestream desk presenting the product",
        ["侧睡纹", "眼霜"],
    ),
    (
        "痛点描述",
        "直播切片",
        26.0,
        31.2,
        "就会比同龄人老个5-6岁，对啊我们不能这样，我们要比同龄人年轻个5-6岁。",
        "same male host at the livestream desk",
        ["抗老"],
    ),
    (
        "品牌介绍",
        "直播切片",
        31.2,
        39.2,
        "欧莱雅做玻色因做了20多年，欧莱雅做玻色因没有平替的。抗皱的、淡纹的、提拉紧致补水保湿修护肌肤的。",
        "same male host at the livestream desk",
        ["玻色因", "抗皱"],
    ),
    (
        "产品介绍",
        "直播切片",
        39.2,
        45.4,
        "全新升级的第三代紫熨斗眼霜，它是一觉淡褪侧睡纹，一支全脸淡纹的眼霜。",
        "same male host holding the purple eye cream",
        ["紫熨斗", "淡纹"],
    ),
    (
        "痛点描述",
        "真人演绎、特效动画",
        45.4,
        48.8,
        "知道么，睡觉也是会压出细纹的哦",
        "brand spokeswoman with long hair lying on a sofa",
        ["细纹"],
    ),
    (
        "痛点描述",
        "真人演绎、特效动画",
        48.8,
        55.3,
        "我们的肌肤是有许许多多的小弹簧的，一支像这样子挤压着它们的话，肌肤会失去弹性",
        "spokeswoman in white camisole, curly hair, talking to camera, animated effects",
        ["弹性"],
    ),
    (
        "代言人展示产品",
        "真人演绎、特效动画",
        55.3,
        58.8,
        "然后这一支呢，现在又、又、又升级啦",
        "same spokeswoman showing the eye cream",
        ["升级"],
    ),
    (
        "产品特性展示",
        "真人演绎、特效动画",
        58.8,
        64.5,
        "多添加了一个功效放大器，能够把肌肤里的小弹簧啊，通通都撑起来",
        "same spokeswoman, animation of skin springs lifting",
        ["功效"],
    ),
]

# Distractors: other products and English records.
_OTHER_ROWS = [
    (
        "running-shoes",
        "产品介绍",
        "真人演绎",
        0.0,
        5.0,
        "",
        "Lightweight running shoes with a cushioned sole, filmed on a city track at sunrise",
        ["sports"],
        "en",
    ),
    (
        "running-shoes",
        "用户评价",
        "用户原创",
        5.0,
        9.0,
        "I ran my first marathon in these and my feet never hurt",
        "a young man jogging in a park, handheld selfie camera",
        ["marathon"],
        "en",
    ),
    (
        "coffee-maker",
        "使用演示",
        "真人演绎",
        0.0,
        7.5,
        "Fill the tank, press the button and your espresso is ready in thirty seconds",
        "hands using a chrome espresso machine in a bright kitchen",
        ["kitchen"],
        "en",
    ),
    (
        "coffee-maker",
        "优惠",
        "产品静物",
        7.5,
        10.0,
        "Order today and get twenty percent off",
        "white background packshot of the coffee maker with a price tag",
        ["sale"],
        "en",
    ),
    (
        "羽绒服",
        "产品介绍",
        "直播切片",
        0.0,
        8.0,
        "这款羽绒服充绒量很足，零下二十度也不怕冷，帽子还可以拆卸",
        "female host in a studio showing a long down jacket",
        ["保暖"],
        "zh",
    ),
    (
        "防晒霜",
        "痛点描述",
        "真人演绎",
        0.0,
        6.0,
        "夏天出门晒一天，脸又红又黑，还长了斑",
        "a woman squinting under strong sunlight at the beach",
        ["防晒"],
        "zh",
    ),
    (
        "night-cream",
        "痛点描述",
        "真人演绎",
        0.0,
        6.0,
        "Do you wake up with sleep lines on your face every morning?",
        "woman looking at creases on her cheek in a bathroom mirror",
        ["wrinkles"],
        "en",
    ),
]


def eye_cream_records() -> list[ClipRecord]:
    out = []
    h = "eyecream0000src1"
    for ct, fmt, start, end, transcript, desc, tags in _EYE_ROWS:
        out.append(
            ClipRecord(
                clip_id=clip_id_for(h, start, end),
                source="eye_cream_ad.mp4",
                source_hash=h,
                start=start,
                end=end,
                language="zh",
                transcript=transcript,
                description=desc,
                content_type=ct,
                format=fmt,
                product=EYE,
                tags=tags,
                label_source="human",
            )
        )
    return out


def distractor_records() -> list[ClipRecord]:
    out = []
    for product, ct, fmt, start, end, transcript, desc, tags, lang in _OTHER_ROWS:
        h = (product.encode().hex() + "0" * 16)[:16]
        out.append(
            ClipRecord(
                clip_id=clip_id_for(h, start, end),
                source=f"{product}.mp4",
                source_hash=h,
                start=start,
                end=end,
                language=lang,
                transcript=transcript,
                description=desc,
                content_type=ct,
                format=fmt,
                product=product,
                tags=tags,
            )
        )
    return out


def all_records() -> list[ClipRecord]:
    return eye_cream_records() + distractor_records()
