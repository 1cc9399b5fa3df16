"""Cut-out with the packaged u2netp on real photos, compositing with shadow, and the scene provider adapter."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cutpilot.errors import InputError, ProviderError
from cutpilot.settings import Settings
from tests._media import SHARED_MEDIA
from tests.http_servers import Reply, TestServer
from tools.background import remove_background, replace_background, scene_colours

IMG = Path(SHARED_MEDIA + "/image")
CUP = IMG / "skimage_coffee_cup.png"  # cup + saucer on a table, 600x400


@pytest.fixture(scope="module")
def cup_cutout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return remove_background(CUP, out_dir=tmp_path_factory.mktemp("cut")).path


def test_cutout_is_rgba_with_real_mask(cup_cutout: Path, tmp_path: Path) -> None:
    with Image.open(cup_cutout) as im:
        assert im.mode == "RGBA" and im.size == (600, 400)
        a = np.asarray(im)[:, :, 3]
    assert a[:20, :20].max() == 0 and a[-20:, -20:].max() == 0  # table corners are transparent
    assert a[190:210, 290:310].min() == 255  # the cup is opaque
    fg = (a > 127).mean()
    assert 0.2 < fg < 0.7
    again = remove_background(CUP, out_dir=cup_cutout.parent)
    assert again.cached and again.path == cup_cutout


def test_exif_rotated_photo_cut_upright(tmp_path: Path) -> None:
    res = remove_background(IMG / "forensics_phone_exif_rot180_4000x3000.jpg", out_dir=tmp_path)
    with Image.open(res.path) as im:
        assert im.size == (2048, 1536)  # capped working size, orientation applied
        a = np.asarray(im)[:, :, 3].astype(float)
    # the white dog lies on the floor in the lower half of the upright photo
    assert a[768:].mean() > a[:384].mean()


def test_prompt_scene_offline_gradient_with_shadow(tmp_path: Path, cup_cutout: Path) -> None:
    s = Settings(home=tmp_path)
    res = replace_background(CUP, "The Bund in Shanghai, with the sunset by the river.", size=(360, 640),
                             settings=s, out_dir=cup_cutout.parent)
    assert res.provider == "offline:gradient" and any("sunset" in n for n in res.notes)
    with Image.open(res.path) as im:
        assert im.mode == "RGB" and im.size == (360, 640)
        px = np.asarray(im).astype(float)
    top = px[5, 180]
    assert top[0] > top[2]  # warm sky
    # the product sits on the floor line (86%): the saucer's red-brown is there, not at the top
    from tools.background import gradient_scene

    plain = gradient_scene("The Bund in Shanghai, with the sunset by the river.", (360, 640)).astype(float)
    changed = np.abs(px - plain).sum(axis=2) > 120  # product pixels (shadows change the scene far less)
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.min() > 640 * 0.3 and abs(rows.max() - 0.70 * 640) < 12  # portrait: stands above the caption band
    # contact shadow: just under the base is darker than the same pixels of the scene without the product
    base = rows.max() + 4
    assert px[base, 170:190].mean() < plain[base, 170:190].mean() - 8
    top2, _, hits = scene_colours("海边 sunset beach")
    assert top2[0] > 150
    assert set(hits) >= {"海边", "sunset", "beach"}


def test_scene_image_composite(tmp_path: Path, cup_cutout: Path) -> None:
    scene = IMG / "kphotoalbum_two_people_bar.jpg"
    res = replace_background(CUP, scene, size=(300, 300), settings=Settings(home=tmp_path),
                             out_dir=cup_cutout.parent, scale=0.5)
    assert res.provider == "offline:composite" and res.params["scene_kind"] == "image"
    with Image.open(res.path) as out, Image.open(scene) as sc:
        o = np.asarray(out).astype(float)
        ref = np.asarray(sc.convert("RGB").resize((400, 300)))[:, 50:350].astype(float)  # cover-crop
    assert np.abs(o[:60] - ref[:60]).mean() < 6  # top of the frame is the scene itself
    with pytest.raises(InputError, match="not found"):
        replace_background(CUP, tmp_path / "missing.jpg", size=(64, 64), settings=Settings(home=tmp_path),
                           out_dir=tmp_path)


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (90, 160), colour).save(buf, "PNG")
    return buf.getvalue()


def test_scene_provider_and_failures(tmp_path: Path, cup_cutout: Path) -> None:
    out = cup_cutout.parent
    with TestServer({"POST /generate": Reply(200, _png((20, 200, 40)), content_type="image/png")}) as srv:
        s = Settings(home=tmp_path, scene_gen_url=srv.url)
        res = replace_background(CUP, "a green meadow", size=(180, 320), settings=s, out_dir=out)
        assert srv.requests[0].json() == {"prompt": "a green meadow", "width": 180, "height": 320}
    assert res.provider.startswith("http:") and res.params["scene_kind"] == "provider"
    with Image.open(res.path) as im:
        assert tuple(np.asarray(im)[5, 5]) == (20, 200, 40)

    for reply, match in [(Reply(403, {"error": "quota"}), "rejected the request: 403"),
                         (Reply(200, b"GIF-nope", content_type="image/png"), "unreadable image"),
                         (Reply(200, {"nothing": True}), "no media")]:
        with TestServer({"POST /generate": reply}) as srv:
            s = Settings(home=tmp_path, scene_gen_url=srv.url)
            with pytest.raises(ProviderError, match=match):
                replace_background(CUP, "a red studio", size=(64, 64), settings=s, out_dir=out)
    with TestServer({"POST /generate": Reply(404, "no such model")}) as srv:
        s = Settings(home=tmp_path, scene_gen_url=srv.url)
        res = replace_background(CUP, "snow mountains", size=(64, 64), settings=s, out_dir=out,
                                 fallback_offline=True)
    assert res.provider == "offline:gradient" and any("404" in n for n in res.notes)
