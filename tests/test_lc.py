"""LangChain tools generated from the MediaTools requests: cheap import, typed schemas, settings never an
argument, real tool runs, a typed result as the artifact, failures as ToolError (and as a message in a ToolNode)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.mediatools import Card, Motion, MusicBed
from cutpilot.errors import ToolError
from cutpilot.settings import Settings
from index.embed import HashEmbedder
from index.library import Library
from tests._media import SHARED_MEDIA
from tools.lc import media_tools

CUP = Path(SHARED_MEDIA + "/image/skimage_coffee_cup.png")


def _call(tool: Any, args: dict[str, object]) -> tuple[Any, object]:
    """(JSON the model reads, typed artifact) of one tool call, as a ToolNode makes it."""
    msg = tool.invoke({"name": tool.name, "args": args, "id": "c1", "type": "tool_call"})
    return json.loads(msg.content), msg.artifact


def test_import_is_cheap() -> None:
    code = ("import sys, tools.lc; heavy = [m for m in ('rembg', 'cv2', 'piper', 'onnxruntime', 'langchain_core', "
            "'tools.background', 'tools.tts', 'torch') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tools_run_and_report_errors(tmp_path: Path) -> None:
    tools = {t.name: t for t in media_tools(Settings(home=tmp_path), out_dir=tmp_path / "a")}
    assert set(tools) == {"tts", "music_bed", "image_to_video", "remove_background", "replace_background",
                          "try_on", "plan_try_on", "scene_prompts", "title_card"}
    assert set(tools["image_to_video"].args) >= {"image", "seconds", "zoom_to", "prompt"}
    for t in tools.values():  # program collaborators are bound, never arguments the model fills in
        assert not {"settings", "out_dir", "library", "ctx"} & set(t.args), t.name
    assert tools["title_card"].args["style"]["enum"] == ["title", "cta"]
    bed, art = _call(tools["music_bed"], {"duration_s": 1.5, "mood": "calm"})
    assert isinstance(art, MusicBed) and art.path.is_file() and art.source == "generated"
    assert bed["duration_s"] == 1.5 and bed["path"] == str(art.path)
    card, art = _call(tools["title_card"], {"text": "限时优惠", "style": "cta", "width": 90, "height": 160})
    assert isinstance(art, Card) and art.path.is_file() and card["size"] == [90, 160]
    with pytest.raises(ToolError, match=r"^tts: ToolMissingError: .*captions only"):
        tools["tts"].invoke({"text": "hola", "lang": "xx"})
    with pytest.raises(ToolError, match="CUTPILOT_TRYON_URL") as e:
        tools["try_on"].invoke({"garment_image": str(CUP), "model_image": str(CUP)})
    assert e.value.one_line().startswith("ToolError: try_on: ProviderError")
    plan, _ = _call(tools["plan_try_on"], {"garment": {"top_category": "大衣", "top_length": "长款"}, "models": [
        {"id": "a", "wearing": {"top_category": "t_shirt", "top_length": "short"}},
        {"id": "b", "wearing": {"top_category": "trench", "top_length": "long"}}]})
    assert plan["models"][0]["id"] == "b" and plan["style"] == "autumn_winter"


def test_search_and_register_with_library(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home")
    lib = Library.open(s, embedder=HashEmbedder(64))
    try:
        tools = {t.name: t for t in media_tools(s, library=lib, out_dir=tmp_path / "assets")}
        vid, art = _call(tools["image_to_video"], {"image": str(CUP), "seconds": 1.0, "width": 96, "height": 160,
                                                   "fps": 10})
        assert isinstance(art, Motion) and art.size == (96, 160) and art.provider == "offline:ken_burns"
        rec, _ = _call(tools["register_generated_clip"], {"path": vid["path"], "description": "espresso cup zoom",
                                                          "product": "espresso"})
        assert rec["provenance"]["tool"] == "image_to_video" and rec["duration_s"] == pytest.approx(1.0, abs=0.1)
        hits, _ = _call(tools["search_library"], {"query": "espresso cup", "product": "espresso"})
        assert hits and hits[0]["clip_id"] == rec["clip_id"] and "source" not in hits[0]
    finally:
        lib.close()
