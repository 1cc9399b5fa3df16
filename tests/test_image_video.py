"""Still → video: offline Ken Burns on real photos (EXIF rotation, motion, exact frames) and the HTTP
image-to-video adapter against a local job server, including its failure paths and offline fallback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from cutpilot.errors import InputError, ProviderError
from cutpilot.media import probe, run_ffmpeg
from cutpilot.settings import Settings
from cutpilot.timeline import KenBurns
from tests._media import SHARED_MEDIA
from tests.http_servers import Reply, TestServer, job_api
from tools.image_video import image_to_video

IMG = Path(SHARED_MEDIA + "/image")
DOG = IMG / "forensics_phone_exif_rot180_4000x3000.jpg"  # EXIF Orientation=3
CUP = IMG / "skimage_coffee_cup.png"


def frames(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w).astype(np.float32)


def count_frames(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    return int(out.stdout.strip())


def test_ken_burns_exif_photo_upright_moving_exact(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    res = image_to_video(DOG, 2.0, size=(180, 320), fps=25, settings=s, out_dir=tmp_path,
                         motion=KenBurns(zoom_from=1.0, zoom_to=1.4, center_to=(0.6, 0.45)))
    assert res.provider == "offline:ken_burns" and res.kind == "image_video"
    pr = probe(res.path)
    assert (pr.width, pr.height, pr.vcodec, round(pr.fps)) == (180, 320, "h264", 25)
    assert count_frames(res.path) == 50 and abs(pr.duration - 2.0) < 0.04
    f = frames(res.path, 180, 320)
    # Upright: the white tiled floor is at the bottom, the dark wall at the top (raw pixels are upside down).
    assert f[0, 220:].mean() > f[0, :100].mean() + 40
    # Motion: first and last frames differ clearly; consecutive frames change smoothly (no jumps).
    assert np.abs(f[0] - f[-1]).mean() > 8
    steps = [np.abs(f[i + 1] - f[i]).mean() for i in range(len(f) - 1)]
    assert max(steps) < 6 * (np.mean(steps) + 0.5)
    again = image_to_video(DOG, 2.0, size=(180, 320), fps=25, settings=s, out_dir=tmp_path,
                           motion=KenBurns(zoom_from=1.0, zoom_to=1.4, center_to=(0.6, 0.45)))
    assert again.cached and again.path == res.path


def test_blur_fit_keeps_whole_product(tmp_path: Path) -> None:
    res = image_to_video(CUP, 1.0, size=(180, 320), fps=10, settings=Settings(home=tmp_path), out_dir=tmp_path,
                         fit="blur", motion=KenBurns(zoom_from=1.0, zoom_to=1.0))
    f = frames(res.path, 180, 320)
    assert len(f) == 10
    # the 600x400 photo fits the width: sharp band in the middle, blurred dimmed copy above and below
    mid, top = f[0, 130:190], f[0, 10:60]
    sharp = np.abs(np.diff(mid, axis=1)).mean()
    soft = np.abs(np.diff(top, axis=1)).mean()
    assert sharp > 2 * soft


def test_bad_inputs(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    with pytest.raises(InputError, match="not an image"):
        image_to_video(Path(SHARED_MEDIA + "/audio/jfk_ask_not.wav"), 2, settings=s, out_dir=tmp_path)
    with pytest.raises(InputError, match="out of range"):
        image_to_video(CUP, 0, settings=s, out_dir=tmp_path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(Exception, match="not a readable image"):
        image_to_video(bad, 1, size=(64, 64), settings=s, out_dir=tmp_path)


@pytest.fixture(scope="module")
def provider_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    p = tmp_path_factory.mktemp("prov") / "out.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1.5", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(p)])
    return p.read_bytes()


def _s(tmp_path: Path, url: str) -> Settings:
    return Settings(home=tmp_path, image_to_video_url=url, provider_api_key="pk", provider_timeout_s=0.4)


def test_http_provider_job_conformed(tmp_path: Path, provider_mp4: bytes) -> None:
    with TestServer(job_api(provider_mp4, polls_before_done=1)) as srv:
        res = image_to_video(CUP, 2.0, size=(160, 288), fps=24, settings=_s(tmp_path, srv.url), out_dir=tmp_path,
                             prompt="steam rising from the cup")
        sub = srv.requests[0]
    assert sub.headers["authorization"] == "Bearer pk" and b"steam rising" in sub.body
    assert sub.body.count(CUP.read_bytes()[:64]) == 1  # the image itself was uploaded
    assert res.provider.startswith("http:") and res.params["provider_size"] == [320, 240]
    pr = probe(res.path)
    assert (pr.width, pr.height, round(pr.fps)) == (160, 288, 24)
    assert count_frames(res.path) == 48  # 1.5 s provider clip padded to the asked 2 s
    assert any("conformed" in n for n in res.notes)


@pytest.mark.parametrize(("routes", "match"), [
    ({"POST /jobs": Reply(400, {"error": "image too small"})}, "rejected the request: 400.*image too small"),
    ({"POST /jobs": Reply(500, "boom")}, "server error 500"),
    ({"POST /jobs": Reply(200, "<html>", content_type="application/json")}, "invalid JSON"),
    ({"POST /jobs": Reply(200, {"id": "j"}, delay_s=1.0)}, "timed out"),
    ("failed", "job job1 failed: NSFW filter"),
    ("garbage", "unusable video"),
])
def test_http_provider_failures(tmp_path: Path, routes: object, match: str) -> None:
    if routes == "failed":
        routes = job_api(b"", fail="NSFW filter")
    elif routes == "garbage":
        routes = job_api(b"this is not an mp4 at all" * 10)
    with TestServer(routes) as srv:  # type: ignore[arg-type]
        s = _s(tmp_path, srv.url)
        with pytest.raises(ProviderError, match=match):
            image_to_video(CUP, 1.0, size=(64, 64), fps=10, settings=s, out_dir=tmp_path)


def test_http_failure_offline_fallback_when_asked(tmp_path: Path) -> None:
    with TestServer({"POST /jobs": Reply(503, "down")}) as srv:
        res = image_to_video(CUP, 1.0, size=(64, 64), fps=10, settings=_s(tmp_path, srv.url), out_dir=tmp_path,
                             fallback_offline=True)
    assert res.provider == "offline:ken_burns" and any("503" in n for n in res.notes)
    assert count_frames(res.path) == 10
    with pytest.raises(ProviderError, match="CUTPILOT_IMAGE_TO_VIDEO_URL"):
        image_to_video(CUP, 1.0, size=(64, 64), settings=Settings(home=tmp_path), out_dir=tmp_path,
                       provider="http")
