"""The core contracts: taxonomies with Chinese aliases, deterministic ids, settings, one-line CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutpilot.cli import main
from cutpilot.errors import InputError, MediaError
from cutpilot.media import probe
from cutpilot.models import (
    ClipFormat,
    ClipRecord,
    ContentType,
    clip_id_for,
    parse_content_type,
    parse_formats,
)
from cutpilot.settings import Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("痛点描述", ContentType.pain_point),
        ("pain point", ContentType.pain_point),
        ("Product-Intro", ContentType.product_intro),
        ("代言人展示产品", ContentType.spokesperson_shows_product),
        ("产品特性展示", ContentType.feature_demo),
        ("offer_cta", ContentType.offer_cta),
    ],
)
def test_content_type_aliases(raw: str, expected: ContentType) -> None:
    assert parse_content_type(raw) is expected


def test_unknown_content_type_is_one_clear_line() -> None:
    with pytest.raises(InputError, match="unknown content type 'jokes'"):
        parse_content_type("jokes")


def test_formats_split_chinese_list() -> None:
    assert parse_formats("真人演绎、特效动画") == [ClipFormat.live_action, ClipFormat.effects_animation]
    assert parse_formats(["直播切片", "livestream"]) == [ClipFormat.livestream]
    with pytest.raises(InputError, match="unknown format"):
        parse_formats("hologram")


def test_clip_record_validates_and_composes_text() -> None:
    rec = ClipRecord(
        clip_id=clip_id_for("abc", 0.0, 6.0), source="a.mp4", source_hash="abc", start=0.0, end=6.0,
        transcript="这是侧睡时的你", content_type="痛点描述", format="真人演绎、特效动画", tags=["侧睡纹"],
    )
    assert rec.duration == 6.0
    assert rec.content_type is ContentType.pain_point
    assert "侧睡纹" in rec.embed_text() and "pain point" in rec.embed_text()
    with pytest.raises(ValueError, match="end"):
        ClipRecord(clip_id="x", source="a", source_hash="h", start=5.0, end=4.0)
    with pytest.raises(ValueError, match="extra"):
        ClipRecord.model_validate({"clip_id": "x", "source": "a", "source_hash": "h", "start": 0, "end": 1, "bogus": 1})


def test_clip_ids_are_deterministic_and_distinct() -> None:
    assert clip_id_for("h", 1.0, 2.5) == clip_id_for("h", 1.0004, 2.5)
    assert clip_id_for("h", 1.0, 2.5) != clip_id_for("h", 1.0, 2.6)
    assert clip_id_for("h", 1.0, 2.5) != clip_id_for("g", 1.0, 2.5)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUTPILOT_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CUTPILOT_LLM_MODEL", "qwen2.5")
    s = Settings()
    assert s.home == tmp_path and s.llm_configured
    assert not Settings(llm_model=None).llm_configured


def test_probe_rejects_corrupt_and_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="zero-length"):
        probe(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(MediaError, match="not a readable media file"):
        probe(junk)


def test_cli_reports_one_line_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "cutpilot" in capsys.readouterr().out
    code = main(["no-such-command"])
    assert code != 0


def test_cli_keeps_a_commands_exit_code() -> None:
    import typer

    from cutpilot.cli import app

    @app.command("_exit-seven", hidden=True)
    def _seven() -> None:
        raise typer.Exit(code=7)

    assert main(["_exit-seven"]) == 7


def test_cli_warnings_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    import typer

    from cutpilot.cli import app

    @app.command("_warn", hidden=True)
    def _warn() -> None:
        warnings.warn("no CLIP weights configured:\n  text search works", UserWarning, stacklevel=1)
        raise typer.Exit(code=0)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["_warn"]) == 0
    err = capsys.readouterr().err
    assert "warning: no CLIP weights configured: text search works" in err
    assert "warnings.warn" not in err


def test_jsonl_rows_are_numbered_and_bad_lines_named() -> None:
    from cutpilot.jsonl import read_objects

    assert read_objects(['{"a": 1}', "", '{"b": 2}'], "x.jsonl") == [(1, {"a": 1}), (3, {"b": 2})]
    with pytest.raises(InputError, match=r"x\.jsonl line 2: not valid JSON"):
        read_objects(['{"a": 1}', "{oops"], "x.jsonl")
    with pytest.raises(InputError, match="line 1: each line must be a JSON object"):
        read_objects(["[1, 2]"], "x.jsonl")
