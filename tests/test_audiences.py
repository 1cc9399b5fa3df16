"""千人千面: the audience and the channel change the ad — hook family and wording, the points that lead, the music,
the shots searched for, the hook's length and the caption density (agent.audiences over prompts/audiences.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.assemble import _chunks, _density
from agent.audiences import audience_profile, channel_profile, profiles
from agent.copywriter import Copywriter, Facts
from agent.templates import hook_family, plan_storyboard
from cutpilot.products import Product
from cutpilot.storyboard import Brief

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "products.yaml"


@pytest.fixture(scope="module")
def lego() -> Product:
    return Product.model_validate(yaml.safe_load(SAMPLES.read_text(encoding="utf-8"))["products"][0])


def _ad(product: Product, lang: str, audience: str | None, **kw: object) -> tuple[list[str], object]:
    b = Brief(text="LEGO Technic ad", product="LEGO Technic", duration_s=20, lang=lang, audience=audience, **kw)
    sb = plan_storyboard(b)
    cw = Copywriter(b, Facts.of(product, b, lang), lang)
    return [cw.line(s.role, s.target_s) for s in sb.slots], sb


def test_profiles_load_and_match_in_both_languages() -> None:
    assert set(profiles().audiences) >= {"kids", "collectors", "parents", "busy", "gift", "students"}
    assert audience_profile("kids 8-12").name == "kids"  # type: ignore[union-attr]
    assert audience_profile("小朋友").name == "kids"  # type: ignore[union-attr]
    assert audience_profile("adult collectors").name == "collectors"  # type: ignore[union-attr]
    assert audience_profile("上班族").name == "busy"  # type: ignore[union-attr]
    assert audience_profile("martians") is None and audience_profile(None) is None
    assert audience_profile("redhead fans").name == "collectors"  # type: ignore[union-attr]  # 'fans', not 'red'
    assert channel_profile(Brief(text="x", platform="抖音")).name == "douyin"  # type: ignore[union-attr]
    assert channel_profile(Brief(text="x", channel="小红书")).name == "xiaohongshu"  # type: ignore[union-attr]
    assert channel_profile(Brief(text="x")) is None


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_two_audiences_of_one_brief_get_different_ads(lego: Product, lang: str) -> None:
    kids, kids_sb = _ad(lego, lang, "kids 8-12")
    coll, coll_sb = _ad(lego, lang, "adult collectors")
    plain, _ = _ad(lego, lang, None)
    assert kids[0] != coll[0] and kids[0] != plain[0]  # the hook changes
    assert kids != coll
    assert kids_sb.music_mood == "fun" and coll_sb.music_mood == "premium"  # type: ignore[attr-defined]
    # the facts' points for each audience lead the ad
    kid_point = lego.points_for("kids 8-12", lang)[0].rstrip("。.")
    coll_point = lego.points_for("adult collectors", lang)[0].rstrip("。.")
    assert any(kid_point.lower()[:12] in x.lower() for x in kids[:2]), kids
    assert any(coll_point.lower()[:12] in x.lower() for x in coll[:2]), coll
    # and the shots that show the product in use are searched for what each audience wants to see
    kq = [s.query for s in kids_sb.slots]  # type: ignore[attr-defined]
    cq = [s.query for s in coll_sb.slots]  # type: ignore[attr-defined]
    assert kq[0] != cq[0] and kq[1] != cq[1]
    assert any("profile" in n for n in kids_sb.notes)  # type: ignore[attr-defined]  # the storyboard says why


def test_hook_family_follows_the_audience_unless_the_brief_names_one() -> None:
    assert hook_family(Brief(text="x", audience="kids")) == "fun"
    assert hook_family(Brief(text="x", audience="adult collectors")) == "curiosity"
    assert hook_family(Brief(text="x", audience="students")) == "offer"
    assert hook_family(Brief(text="x", audience="kids", angle_family="offer")) == "offer"  # explicit wins
    assert hook_family(Brief(text="x", audience="kids", angle="侧睡纹")) == "pain"  # a pain angle stays pain
    assert hook_family(Brief(text="x", audience="上班族")) == "curiosity"  # a pain hook needs a pain to name


def test_an_audience_no_profile_knows_is_still_addressed(lego: Product) -> None:
    a, _ = _ad(lego, "en", "model train fans")
    b, _ = _ad(lego, "en", "first-time builders")
    assert a[0] != b[0] and ("first-time builders" in b[0].lower())


def test_channel_norms_change_hook_length_and_caption_density(lego: Product) -> None:
    _, douyin = _ad(lego, "zh", None, platform="抖音")
    _, red = _ad(lego, "zh", None, channel="小红书")
    _, none = _ad(lego, "zh", None)
    assert douyin.slots[0].target_s == 2.0 and red.slots[0].target_s == 3.0  # type: ignore[attr-defined]
    assert _density(douyin) == (12, 6) and _density(red)[0] == 16 and _density(none) == (14, 7)  # type: ignore[arg-type]
    text = "齿轮真的会转方向盘真的能打动手拼搭"
    assert max(map(len, _chunks(text, "zh", 12, 6))) == 12 and max(map(len, _chunks(text, "zh", 16, 8))) == 16


def test_audience_points_are_validated_and_found_by_profile(lego: Product) -> None:
    assert lego.points_for("小朋友", "zh") == lego.points_for("kids 8-12", "zh")  # one profile, either label
    assert lego.points_for("kids 8-12", "en") == ["Hours of hands-on building"]
    assert lego.points_for(None, "en") == [] and lego.points_for("martians", "en") == []
    with pytest.raises(ValueError, match="audience is empty"):
        Product(name="x", audience_points={" ": ["a"]})


def test_a_swapped_shot_keeps_the_other_shots_lengths() -> None:
    """keep_lengths: a swap into a shorter clip takes its difference from the nearest neighbour only."""
    from agent.assemble import fit_durations, keep_lengths
    from cutpilot.storyboard import ClipChoice, Slot, SlotRole, Storyboard

    def sb(second_len: float) -> Storyboard:
        lens = [3.0, 6.0, 6.0, 6.0, 9.0]
        lens[1] = second_len
        roles = [SlotRole.hook, SlotRole.product_intro, SlotRole.feature_demo, SlotRole.brand, SlotRole.offer_cta]
        return Storyboard(brief=Brief(text="x", duration_s=30), slots=[
            Slot(index=i, role=r, target_s=[3.0, 6.5, 6.5, 6.5, 7.5][i],
                 chosen=ClipChoice(clip_id=f"c{i}", source=f"/v{i}.mp4", start=0.0, end=lens[i]))
            for i, r in enumerate(roles)])

    before = fit_durations(sb(6.0), {})
    swapped = sb(3.1)
    after = keep_lengths(swapped, {}, before, fit_durations(swapped, {}))
    assert sum(after) == sum(before) == 30000
    changed = [i for i in range(5) if after[i] != before[i]]
    assert 1 in changed and len(changed) <= 3 and after[0] == before[0], (before, after)
    assert after[1] <= round(3.1 * 1300)
    assert keep_lengths(swapped, {}, None, [1, 2]) == [1, 2]  # nothing to keep: the fresh fit
