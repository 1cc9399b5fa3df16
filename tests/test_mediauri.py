"""Media by reference: plain paths, file://, media:// (a shared root) and s3:// (moto's server mode) resolve to
local files, and a render of a timeline holding URIs works through the toolbox and the `render` CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.toolbox import Toolbox
from cutpilot.cli import main
from cutpilot.errors import InputError, MediaError
from cutpilot.mediauri import media_sources, record_source, resolve, resolve_timeline, to_uri
from cutpilot.settings import Settings
from cutpilot.timeline import BrandKit, CardItem, ClipItem, ImageItem, MusicBed, OutputSpec, Timeline, VoiceoverItem

FIX = Path(__file__).resolve().parent / "fixtures" / "render"
LEGO = FIX / "hug_lego_product_shot.mp4"
CUP = FIX / "skimage_coffee_cup.png"
VO = FIX / "cmu_arctic_a0007.wav"
SPEC = OutputSpec.preset("9:16", scale=0.25)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A 'shared filesystem' holding footage under a folder with a space and Chinese in its name."""
    r = tmp_path / "mnt" / "media"
    (r / "品牌 A").mkdir(parents=True)
    shutil.copy(LEGO, r / "品牌 A" / "lego shot.mp4")
    shutil.copy(VO, r / "vo.wav")
    return r


def _settings(tmp_path: Path, root: Path | None, **kw: Any) -> Settings:
    return Settings(home=tmp_path / "home", media_root=root, **kw)


def test_uris_round_trip(tmp_path: Path, root: Path) -> None:
    s = _settings(tmp_path, root)
    clip = root / "品牌 A" / "lego shot.mp4"
    uri = to_uri(clip, s)
    assert uri == "media://%E5%93%81%E7%89%8C%20A/lego%20shot.mp4"
    assert resolve(uri, s) == clip
    other = to_uri(CUP, s)
    assert other.startswith("file:///") and resolve(other, s) == CUP
    assert resolve(str(CUP), s) == CUP and resolve("rel/x.mp4", s) == Path("rel/x.mp4")  # plain paths unchanged
    assert resolve(CUP, s) == CUP
    # another worker mounts the same share elsewhere: the same URI finds the same file there
    elsewhere = tmp_path / "worker2"
    shutil.copytree(root, elsewhere)
    assert resolve(uri, _settings(tmp_path, elsewhere)).read_bytes() == clip.read_bytes()
    assert record_source(clip, s) == str(clip)  # media_uris off: ingest records plain paths, as before
    on = _settings(tmp_path, root, media_uris=True)
    assert record_source(clip, on) == uri and record_source(CUP, on) == str(CUP)


@pytest.mark.parametrize(("value", "match"), [
    ("ftp://host/a.mp4", "unknown media URI scheme 'ftp'"),
    ("media://../etc/passwd", "bad media URI"),
    ("media://", "bad media URI"),
    ("file://otherhost/a.mp4", "names host"),
    ("s3://bucket", "bad s3 URI"),
])  # fmt: skip
def test_bad_uris_are_input_errors(tmp_path: Path, root: Path, value: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        resolve(value, _settings(tmp_path, root, s3_endpoint="http://127.0.0.1:1"))


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="CUTPILOT_MEDIA_ROOT"):
        resolve("media://a.mp4", _settings(tmp_path, None))
    with pytest.raises(MediaError, match="not mounted"):
        resolve("media://a.mp4", _settings(tmp_path, tmp_path / "gone"))
    with pytest.raises(InputError, match="CUTPILOT_S3_ENDPOINT"):
        resolve("s3://b/k.mp4", _settings(tmp_path, None))


def _timeline(clip: str, still: str, vo: str, music: str | None = None) -> Timeline:
    return Timeline(
        output=SPEC,
        video=[ClipItem(id="lego", source=clip, in_ms=0, out_ms=1000, start_ms=0, duration_ms=1000, audio=True),
               ImageItem(id="cup", source=still, start_ms=1000, duration_ms=600),
               CardItem(id="cta", text="立即购买", start_ms=1600, duration_ms=500, background=still)],
        voiceover=[VoiceoverItem(id="vo", source=vo, start_ms=100, duration_ms=1500)],
        music=MusicBed(source=music) if music else None,
        brand=BrandKit(logo=still),
    )  # fmt: skip


def _probe(p: Path) -> dict[str, Any]:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(p)],
                       capture_output=True, text=True, check=True)
    data = json.loads(r.stdout)
    return {s["codec_type"]: s for s in data["streams"]} | {"format": data["format"]}


def _check(p: Path, tl: Timeline) -> None:
    s = _probe(p)
    assert s["video"]["codec_name"] == "h264" and s["audio"]["codec_name"] == "aac"
    assert (int(s["video"]["width"]), int(s["video"]["height"])) == (SPEC.width, SPEC.height)
    assert abs(float(s["format"]["duration"]) - tl.duration_ms / 1000) < 0.1


def test_resolve_timeline_and_toolbox_render(tmp_path: Path, root: Path) -> None:
    s = _settings(tmp_path, root)
    plain = _timeline(str(LEGO), str(CUP), str(VO))
    assert resolve_timeline(plain, s) is plain  # nothing to resolve: the same object, same render cache keys
    tl = _timeline("media://%E5%93%81%E7%89%8C%20A/lego%20shot.mp4", CUP.as_uri(), "media://vo.wav")
    local = resolve_timeline(tl, s)
    assert all(not x.startswith(("media:", "file:")) and Path(x).is_file() for x in media_sources(local))
    assert len(media_sources(local)) == 5 and tl.video[0].source.startswith("media://")  # input untouched
    res = Toolbox(s).render(tl, tmp_path / "ad.mp4", quality="draft", cache_dir=None)
    _check(res.path, tl)


def test_render_cli_resolves_uris_and_errors_in_one_line(tmp_path: Path, root: Path, _isolated_home: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from cutpilot.settings import get_settings

    monkeypatch.setenv("CUTPILOT_MEDIA_ROOT", str(root))
    get_settings.cache_clear()
    tl = _timeline("media://%E5%93%81%E7%89%8C%20A/lego%20shot.mp4", CUP.as_uri(), VO.as_uri())
    path = tl.save(tmp_path / "tl.json")
    out = tmp_path / "cli.mp4"
    assert main(["render", str(path), "--out", str(out), "--quality", "draft"]) == 0
    _check(out, tl)
    bad = _timeline("gs://bucket/a.mp4", str(CUP), str(VO)).save(tmp_path / "bad.json")
    capsys.readouterr()
    assert main(["render", str(bad), "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown media URI scheme 'gs'" in err
    monkeypatch.setenv("CUTPILOT_MEDIA_ROOT", str(tmp_path / "unmounted"))
    get_settings.cache_clear()
    assert main(["render", str(path), "--out", str(tmp_path / "y.mp4")]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not mounted" in err and not (tmp_path / "y.mp4").exists()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto's S3 in server mode on a free local port (a real HTTP endpoint boto3 talks to)."""
    pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    import boto3

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=url)
    client.create_bucket(Bucket="footage")
    client.upload_file(str(LEGO), "footage", "brand a/lego.mp4")
    yield url, client
    server.stop()


def test_s3_fetched_once_into_the_cache_and_rendered(tmp_path: Path, s3: Any) -> None:
    url, client = s3
    s = _settings(tmp_path, None, s3_endpoint=url)
    uri = "s3://footage/brand%20a/lego.mp4"
    first = resolve(uri, s)
    assert first.is_file() and first.read_bytes() == LEGO.read_bytes()
    assert first.is_relative_to(s.home / "media-cache")
    stamp = first.stat().st_mtime_ns
    assert resolve(uri, s) == first and first.stat().st_mtime_ns == stamp  # cached: not fetched again
    client.put_object(Bucket="footage", Key="brand a/lego.mp4", Body=CUP.read_bytes())  # the object changed
    assert resolve(uri, s) != first
    client.upload_file(str(LEGO), "footage", "brand a/lego.mp4")
    with pytest.raises(MediaError, match="cannot fetch"):
        resolve("s3://footage/missing.mp4", s)
    tl = _timeline(uri, str(CUP), str(VO))
    res = Toolbox(s).render(tl, tmp_path / "s3.mp4", quality="draft", cache_dir=None)
    _check(res.path, tl)


@pytest.mark.slow
def test_ingest_records_media_uris_under_the_root_when_asked(tmp_path: Path, root: Path) -> None:
    """With media_uris on, a clip ingested from under the media root is stored as media://…, and a worker with the
    same root mounted elsewhere resolves it to its own copy."""
    import warnings

    from index.ingest import ingest
    from index.library import Library

    shutil.copy(CUP, root / "cup.png")
    s = _settings(tmp_path, root, media_uris=True, text_embedder="hash")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(s)
    try:
        rep = ingest([root / "cup.png"], s, lib, progress=False)
        assert [r.status for r in rep.rows] == ["ok"], rep.rows
        [rec] = lib.records()
    finally:
        lib.close()
    assert rec.source == "media://cup.png"
    other = tmp_path / "mount-elsewhere"
    shutil.copytree(root, other)
    assert resolve(rec.source, _settings(tmp_path, other)) == other / "cup.png"
