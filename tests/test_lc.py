"""LangChain adapters: cheap import, real schemas, real tool runs, typed errors returned as one-line dicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cutpilot.settings import Settings
from index.embed import HashEmbedder
from index.library import Library
from tests._media import SHARED_MEDIA
from tools.lc import media_tools

CUP = Path(SHARED_MEDIA + "/image/skimage_coffee_cup.png")


def test_import_is_cheap() -> None:
    code = ("import sys, tools.lc; heavy = [m for m in ('rembg', 'cv2', 'piper', 'onnxruntime', 'langchain_core', "
            "'tools.background', 'tools.tts', 'torch') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tools_run_and_report_errors(tmp_path: Path) -> None:
    tools = {t.name: t for t in media_tools(Settings(home=tmp_path))}
    assert set(tools) == {"tts", "music_bed", "image_to_video", "remove_background", "replace_background",
                          "try_on", "plan_try_on", "scene_prompts", "title_card"}
    assert set(tools["image_to_video"].args) >= {"image", "seconds", "zoom_to", "prompt"}
    bed = tools["music_bed"].invoke({"duration_s": 1.5, "mood": "calm"})
    assert Path(bed["path"]).is_file() and bed["duration_s"] == 1.5 and bed["source"] == "generated"
    err = tools["tts"].invoke({"text": "hola", "lang": "xx"})
    assert err["error"].startswith("ToolMissingError") and "captions only" in err["error"]
    no = tools["try_on"].invoke({"garment_image": str(CUP), "model_image": str(CUP)})
    assert no["error"].startswith("ProviderError") and "CUTPILOT_TRYON_URL" in no["error"]
    plan = tools["plan_try_on"].invoke({"garment": {"top_category": "大衣", "top_length": "长款"}, "models": [
        {"id": "a", "wearing": {"top_category": "t_shirt", "top_length": "short"}},
        {"id": "b", "wearing": {"top_category": "trench", "top_length": "long"}}]})
    assert plan["models"][0]["model"]["id"] == "b" and plan["style"] == "autumn_winter"


def test_search_and_register_with_library(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home")
    lib = Library.open(s, embedder=HashEmbedder(64))
    try:
        tools = {t.name: t for t in media_tools(s, library=lib, out_dir=tmp_path / "assets")}
        vid = tools["image_to_video"].invoke({"image": str(CUP), "seconds": 1.0, "width": 96, "height": 160,
                                              "fps": 10})
        rec = tools["register_generated_clip"].invoke({"path": vid["path"], "description": "espresso cup zoom",
                                                       "product": "espresso"})
        assert rec["generated"] and rec["provenance"]["tool"] == "image_to_video"
        hits = tools["search_library"].invoke({"query": "espresso cup", "product": "espresso"})
        assert hits and hits[0]["clip_id"] == rec["clip_id"]
    finally:
        lib.close()
