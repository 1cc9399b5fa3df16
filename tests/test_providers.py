"""The shared provider adapter against real local HTTP servers: success, retries, 4xx, 5xx, hangs, bad JSON."""

from __future__ import annotations

import base64
import time

import pytest

from cutpilot.errors import ProviderError
from cutpilot.settings import Settings
from tests.http_servers import Reply, TestServer, job_api
from tools.providers import ProviderClient, media_from_response


def client(url: str, **kw: object) -> ProviderClient:
    opts: dict = {"name": "test-provider", "timeout_s": 0.3, "retries": 2, "backoff_s": 0.01} | kw
    return ProviderClient(url, **opts)


def test_json_success_sends_bearer_key() -> None:
    with TestServer({"POST /x": Reply(200, {"ok": 1})}) as srv, client(srv.url, api_key="sekret") as c:
        assert c.json("POST", "/x", json={"a": 1}) == {"ok": 1}
        assert srv.requests[0].headers["authorization"] == "Bearer sekret"
        assert srv.requests[0].json() == {"a": 1}


def test_5xx_is_retried_then_succeeds() -> None:
    with (
        TestServer({"GET /x": [Reply(503, "busy"), Reply(502, "bad gw"), Reply(200, {"ok": 2})]}) as srv,
        client(srv.url) as c,
    ):
        assert c.json("GET", "/x") == {"ok": 2}
        assert srv.count("GET", "/x") == 3


def test_5xx_exhausts_retries_with_clear_error() -> None:
    with (
        TestServer({"GET /x": Reply(500, "model crashed")}) as srv,
        client(srv.url, retries=1) as c,
        pytest.raises(ProviderError) as ei,
    ):
        c.json("GET", "/x")
        assert srv.count("GET", "/x") == 2
    msg = str(ei.value)
    assert "test-provider" in msg and "2 tries" in msg and "500" in msg and "model crashed" in msg


def test_4xx_fails_at_once_without_retry() -> None:
    with (
        TestServer({"POST /x": Reply(422, {"detail": "prompt too long"})}) as srv,
        client(srv.url) as c,
        pytest.raises(ProviderError, match=r"rejected the request: 422.*prompt too long"),
    ):
        c.json("POST", "/x", json={})
        assert srv.count("POST", "/x") == 1


def test_hang_past_timeout_is_a_provider_error_not_a_hang() -> None:
    with TestServer({"GET /slow": Reply(200, {"ok": 1}, delay_s=1.0)}) as srv:
        t0 = time.monotonic()
        with client(srv.url, retries=1) as c, pytest.raises(ProviderError, match=r"timed out after 0\.3s"):
            c.json("GET", "/slow")
        assert time.monotonic() - t0 < 1.5


def test_bad_json_is_clear() -> None:
    with (
        TestServer({"GET /x": Reply(200, "{not json", content_type="application/json")}) as srv,
        client(srv.url) as c,
        pytest.raises(ProviderError, match="invalid JSON"),
    ):
        c.json("GET", "/x")
    with (
        TestServer({"GET /x": Reply(200, [1, 2])}) as srv,
        client(srv.url) as c,
        pytest.raises(ProviderError, match="expected an object"),
    ):
        c.json("GET", "/x")


def test_unreachable_and_unconfigured() -> None:
    with TestServer({}) as srv:
        dead = srv.url
    with client(dead, retries=0) as c, pytest.raises(ProviderError, match="unreachable"):
        c.json("GET", "/x")
    with pytest.raises(ProviderError, match="CUTPILOT_TRYON_URL"):
        ProviderClient.from_settings(Settings(), None, name="try-on", setting="tryon_url")
    with pytest.raises(ProviderError, match="not an http"):
        ProviderClient("ftp://x", name="p")


def test_async_job_polls_then_downloads() -> None:
    with TestServer(job_api(b"MP4DATA", polls_before_done=2)) as srv, client(srv.url) as c:
        assert c.run_job("/jobs", poll_s=0.01, json={"prompt": "x"}) == b"MP4DATA"
        assert srv.count("GET", "/jobs/job1") == 3


def test_async_job_failure_and_wait_limit() -> None:
    with (
        TestServer(job_api(b"", fail="GPU out of memory")) as srv,
        client(srv.url) as c,
        pytest.raises(ProviderError, match="job job1 failed: GPU out of memory"),
    ):
        c.run_job("/jobs", poll_s=0.01, json={})
    with (
        TestServer(job_api(b"x", polls_before_done=10_000)) as srv,
        client(srv.url) as c,
        pytest.raises(ProviderError, match="still running after waiting"),
    ):
        c.run_job("/jobs", poll_s=0.01, max_wait_s=0.2, json={})
    with (
        TestServer({"POST /jobs": Reply(200, {"status": "queued"})}) as srv,
        client(srv.url) as c,
        pytest.raises(ProviderError, match="no id"),
    ):
        c.run_job("/jobs", json={})


def test_media_from_response_variants() -> None:
    png = b"\x89PNG fake"
    routes = {
        "GET /raw": Reply(200, png, content_type="image/png"),
        "GET /b64": Reply(200, {"data": [{"b64_json": base64.b64encode(png).decode()}]}),
        "GET /url": Reply(200, {"url": "/raw"}),
        "GET /none": Reply(200, {"hello": 1}),
    }
    with TestServer(routes) as srv, client(srv.url) as c:
        for path in ("/raw", "/b64", "/url"):
            assert media_from_response(c.request("GET", path), "p", c) == png
        with pytest.raises(ProviderError, match="no media"):
            media_from_response(c.request("GET", "/none"), "p", c)
