"""The runner's new inputs for the sight-and-sound scorers: what the render sounds like (heard_text), the
product facts grounding is checked against, and revision turns scored on whether they were answered."""

from __future__ import annotations

import shutil
import subprocess
import types
from pathlib import Path
from typing import Any, cast

import pytest
from _media import SHARED_MEDIA

from cutpilot.errors import InputError, MediaError
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, ClipChoice, Slot, SlotRole, Storyboard
from cutpilot.timeline import ClipItem, Timeline
from evals import runner as R
from evals.schema import Case
from evals.scorers import Gold, RenderFacts

PRODUCTS = """
products:
  - name: LEGO Technic
    aliases: [乐高机械组, 乐高]
    selling_points: [齿轮真的会转]
    selling_points_en: [Working gears and a real steering system]
    offer: 今天下单包邮
    offer_en: Order today and get free shipping
    audience: families
    banned_claims: [best ever]
"""


def test_product_facts_from_the_products_file(tmp_path: Path) -> None:
    path = tmp_path / "products.yaml"
    path.write_text(PRODUCTS, encoding="utf-8")
    book = R.load_products(path)
    facts = R.product_facts(Brief(text="x", product="LEGO Technic"), book)
    assert facts[0] == "LEGO Technic" and "乐高" in facts and "今天下单包邮" in facts
    assert "Order today and get free shipping" in facts and "families" not in facts and "best ever" not in facts
    assert R.product_facts(Brief(text="给乐高机械组做一条广告"), book) == facts  # matched in the text
    assert R.product_facts(Brief(text="x", product="乐高"), book)[0] == "乐高"  # by alias
    assert R.product_facts(Brief(text="x", product="Unknown Tea"), book) == ("Unknown Tea",)
    assert R.load_products(tmp_path / "absent.yaml") is None
    assert R.product_facts(Brief(text="x", product="LEGO Technic"), None) == ("LEGO Technic",)
    (tmp_path / "bad.yaml").write_text("products: [{name: x, colour: red}]", encoding="utf-8")
    with pytest.raises(InputError):
        R.load_products(tmp_path / "bad.yaml")


def test_shipped_products_file_grounds_the_golden_products() -> None:
    book = R.load_products()
    if book is None:
        pytest.skip("evals/golden/products.yaml not shipped")
    for name in ("LEGO Technic", "欧莱雅紫熨斗眼霜", "Morning Brew Coffee"):
        assert len(R.product_facts(Brief(text="x", product=name), book)) > 3, name


def _ad(tmp_path: Path) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("no ffmpeg")
    out = tmp_path / "ad.mp4"
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x64:d=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-shortest", "-c:v", "libx264",
                    "-c:a", "aac", str(out)], check=True)
    return out


JFK = Path(SHARED_MEDIA) / "audio" / "jfk_ask_not.wav"


@pytest.mark.slow
@pytest.mark.skipif(not JFK.exists(), reason="shared test media not present")
def test_heard_text_listens_where_the_ad_speaks(tmp_path: Path) -> None:
    """5 s of a tone bed, then real speech: the windows where the timeline speaks are what is transcribed."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("no ffmpeg")
    ad = tmp_path / "ad.mp4"
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=red:s=64x64:d=16", "-f", "lavfi", "-i", "sine=frequency=220:duration=5", "-i", str(JFK),
                    "-filter_complex", "[1:a]volume=0.2,aresample=16000[a0];[2:a]aresample=16000[a1];"
                    "[a0][a1]concat=n=2:v=0:a=1[a]", "-map", "0:v", "-map", "[a]", "-shortest", "-c:v", "libx264",
                    "-c:a", "aac", str(ad)], check=True)
    s = Settings(home=tmp_path)
    heard = R.heard_text(ad, "en", s, [(5000, 16000)])
    assert "ask not what your country" in heard.lower()
    assert R.heard_text(ad, "en", s, []) == ""  # nothing meant to be heard: nothing listened for


def test_listen_records_an_asr_failure_instead_of_raising(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    facts = RenderFacts(duration_s=1.0, has_video=True, has_audio=True)

    def boom(path: Path, lang: str, settings: Settings, spans: Any = None, vocabulary: Any = ()) -> str:
        raise MediaError("speech recognition failed")

    monkeypatch.setattr(R, "heard_text", boom)
    out = R.listen(facts, tmp_path / "ad.mp4", "en", Settings(home=tmp_path))
    assert out.heard_text is None and out.asr_error and "speech recognition failed" in out.asr_error
    monkeypatch.setattr(R, "heard_text", lambda path, lang, settings, spans=None, vocabulary=(): "ok")
    assert R.listen(facts, tmp_path / "ad.mp4", "en", Settings(home=tmp_path)).heard_text == "ok"
    silent = facts.model_copy(update={"has_audio": False})
    assert R.listen(silent, tmp_path / "ad.mp4", "en", Settings(home=tmp_path)).heard_text == ""


def _board(lines: list[str]) -> Storyboard:
    return Storyboard(brief=Brief(text="Make a 10s ad for the LEGO Technic set", product="LEGO Technic", lang="en",
                                  duration_s=10),
                      slots=[Slot(index=i, role=r, target_s=5.0, line=line, chosen=ClipChoice(clip_id=f"c{i}"))
                             for i, (r, line) in enumerate(zip([SlotRole.hook, SlotRole.offer_cta], lines,
                                                               strict=True))])


def _timeline() -> Timeline:
    return Timeline(video=[ClipItem(id=f"v{i}", start_ms=i * 5000, duration_ms=5000, source="/m.mp4", in_ms=0,
                                    out_ms=5000, clip_id=f"c{i}", slot=i) for i in range(2)])


def test_revision_turns_are_scored_on_being_answered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal with a message passes, a silent no-op fails, a change passes; the record of an earlier turn is
    never mistaken for this turn's answer."""
    sb0 = _board(["Meet LEGO Technic.", "LEGO Technic: free shipping."]).model_dump(mode="json")
    sb1 = _board(["LEGO Technic: gears that turn.", "LEGO Technic: free shipping."]).model_dump(mode="json")
    tl = _timeline().model_dump(mode="json")
    refused = {"kind": "refused", "text": "replace shot 9 with a drone shot", "applied": False,
               "message": "There is no shot 9; the ad has 2 shots.", "alternatives": ["replace shot 2"]}
    states = iter([
        {"storyboard": sb0, "timeline": tl, "run": {"revisions": []}},
        {"storyboard": sb0, "timeline": tl, "run": {"revisions": [refused]}},
        {"storyboard": sb0, "timeline": tl, "run": {"revisions": [refused, {"kind": "not_understood"}]}},
        {"storyboard": sb0, "timeline": tl, "run": {"revisions": [refused, {"kind": "not_understood"}]}},
        {"storyboard": sb1, "timeline": tl, "run": {"revisions": [refused, {"kind": "not_understood"},
                                                                  {"kind": "rewrite_line", "applied": True}]}},
    ])
    class FakeDoor:
        def start(self, *a: Any, **k: Any) -> Any:
            return types.SimpleNamespace(thread_id="t1")

        def resume(self, *a: Any, **k: Any) -> None:
            return None

        def state(self, thread_id: str) -> dict[str, Any]:
            return dict(next(states))
    gl = types.SimpleNamespace(records={}, gold=Gold(), settings=Settings(home=tmp_path))
    ctx = R.Ctx(gl=cast(Any, gl), library=None, planner="offline", render=False, work=tmp_path, embedder=None,
                make=None, judge=None, door=FakeDoor())
    case = Case.model_validate({"id": "r@v1", "brief": "Make a 10s ad for the LEGO Technic set", "revisions": [
        {"request": "replace shot 9 with a drone shot", "expect_message": True, "expect_changed_slots_max": 0},
        {"request": "hmm", "expect_changed_slots_min": 1},
        {"request": "again"},
        {"request": "tighter hook line", "expect_changed_slots_min": 1, "expect_changed_slots_max": 1},
    ]})
    rows = R.run_case(case, ctx)
    assert [r.ok for r in rows] == [True] * 5
    answered = [r.value("revision_answered") for r in rows[1:]]
    assert answered == [1.0, 0.0, 0.0, 1.0]
    assert rows[0].value("revision_answered") is None
    first = next(s for s in rows[1].scores if s["name"] == "revision_answered")
    assert first["raw"]["alternatives"] == ["replace shot 2"] and "no shot 9" in first["detail"]
    third = next(s for s in rows[3].scores if s["name"] == "revision_answered")
    assert third["raw"]["kind"] is None  # no new record this turn: not the previous turn's answer
    # grounding and footage share score every run; intelligibility waits for a render
    assert rows[4].value("grounding") == 1.0 and rows[4].value("footage_share") == 1.0
    assert rows[4].value("intelligibility") is None
