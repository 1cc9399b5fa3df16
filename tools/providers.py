"""One HTTP adapter for every gap-filling provider (TTS, image-to-video, scene generation, try-on).

WHY one module: retries, timeouts, auth and error wording are the same for every remote model, and the planner
must get one clear `ProviderError` line (never a traceback or a hung run) whatever the provider did wrong.
Retries: connection errors, timeouts and 5xx (with exponential backoff); 4xx fail at once (retrying a bad
request cannot help). Async jobs follow one small documented protocol, see `run_job`.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx

from cutpilot.errors import ProviderError
from cutpilot.settings import Settings

_DONE = {"succeeded", "success", "completed", "complete", "done", "finished"}
_FAILED = {"failed", "failure", "error", "errored", "cancelled", "canceled"}


class ProviderClient:
    """A configured endpoint: base URL, optional bearer key, per-request timeout, bounded retries."""

    def __init__(self, base_url: str, *, name: str, api_key: str | None = None, timeout_s: float = 120.0,
                 retries: int = 2, backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ProviderError(f"{name}: provider URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s,
                                    transport=transport, follow_redirects=True)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None, *, name: str, setting: str,
                      api_key: str | None = None, retries: int = 2) -> ProviderClient:
        """Client for a configured provider; an unconfigured one is a clear error naming the setting."""
        if not url:
            raise ProviderError(f"{name}: no provider configured (set CUTPILOT_{setting.upper()})")
        return cls(url, name=name, api_key=api_key or settings.provider_api_key,
                   timeout_s=settings.provider_timeout_s, retries=retries)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests -------------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send with retries on transport errors / timeouts / 5xx; any final failure is a ProviderError."""
        where = f"{self.name} ({method} {self._abs(path)})"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * (2 ** (attempt - 1)))
            try:
                resp = self._client.request(method, path, **kw)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout_s:g}s"
                continue
            except httpx.TransportError as e:
                last = f"unreachable ({type(e).__name__}: {e})"
                continue
            if resp.status_code >= 500:
                last = f"server error {resp.status_code}: {_snippet(resp)}"
                continue
            if resp.status_code >= 400:
                raise ProviderError(f"{where} rejected the request: {resp.status_code} {_snippet(resp)}")
            return resp
        tries = self.retries + 1
        raise ProviderError(f"{where} failed after {tries} tr{'y' if tries == 1 else 'ies'}: {last}")

    def json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = self.request(method, path, **kw)
        return _json(resp, f"{self.name} ({method} {self._abs(path)})")

    def get_bytes(self, path_or_url: str) -> bytes:
        resp = self.request("GET", path_or_url)
        if not resp.content:
            raise ProviderError(f"{self.name}: empty download from {self._abs(path_or_url)}")
        return resp.content

    def _abs(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    # --- async jobs -------------------------------------------------------------------------------------
    def run_job(self, submit_path: str, *, max_wait_s: float | None = None, poll_s: float = 0.5,
                **submit_kw: Any) -> bytes:
        """POST `submit_path` → {"id"} ; poll GET {submit_path}/{id} → {"status", "output_url" | "error"} ;
        GET output_url → bytes. Unknown/failed status, missing id, or waiting past `max_wait_s` → ProviderError."""
        job = self.json("POST", submit_path, **submit_kw)
        job_id = job.get("id") or job.get("job_id")
        if not job_id:
            raise ProviderError(f"{self.name}: job submission returned no id (got keys {sorted(job)})")
        deadline = time.monotonic() + (max_wait_s if max_wait_s is not None else self.timeout_s * 5)
        status_path = f"{submit_path.rstrip('/')}/{job_id}"
        while True:
            info = job if str(job.get("status", "")).lower() in _DONE | _FAILED else self.json("GET", status_path)
            job = {}
            state = str(info.get("status", "")).lower()
            if state in _DONE:
                out = info.get("output_url") or info.get("url") or info.get("output")
                if isinstance(out, str) and out:
                    return self.get_bytes(out)
                b64 = info.get("output_b64") or info.get("b64")
                if isinstance(b64, str) and b64:
                    return _b64(b64, self.name)
                raise ProviderError(f"{self.name}: job {job_id} finished without an output_url")
            if state in _FAILED:
                raise ProviderError(f"{self.name}: job {job_id} failed: {info.get('error') or 'no reason given'}")
            if time.monotonic() > deadline:
                raise ProviderError(f"{self.name}: job {job_id} still {state or 'pending'} after waiting "
                                    f"{(max_wait_s if max_wait_s is not None else self.timeout_s * 5):g}s")
            time.sleep(poll_s)


def media_from_response(resp: httpx.Response, name: str, client: ProviderClient | None = None) -> bytes:
    """A provider may answer with the media itself, or JSON carrying `b64_json`/`image_b64`/`url`."""
    ctype = resp.headers.get("content-type", "")
    if not ctype.startswith("application/json"):
        if not resp.content:
            raise ProviderError(f"{name}: empty response body")
        return resp.content
    data = _json(resp, name)
    for key in ("b64_json", "image_b64", "b64", "output_b64"):
        if isinstance(data.get(key), str):
            return _b64(data[key], name)
    items = data.get("data")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        data = items[0]
        if isinstance(data.get("b64_json"), str):
            return _b64(data["b64_json"], name)
    url = data.get("url") or data.get("output_url")
    if isinstance(url, str) and url and client is not None:
        return client.get_bytes(url)
    raise ProviderError(f"{name}: JSON response carried no media (keys {sorted(data)})")


def write_bytes(data: bytes, dest: Path) -> Path:
    """Atomic write (tmp + rename) so a crash never leaves a half asset under its content address."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest


def _json(resp: httpx.Response, where: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError as e:
        raise ProviderError(f"{where} returned invalid JSON: {_snippet(resp)}") from e
    if not isinstance(data, dict):
        raise ProviderError(f"{where} returned JSON {type(data).__name__}, expected an object")
    return data


def _b64(s: str, name: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except ValueError as e:
        raise ProviderError(f"{name}: invalid base64 media in response") from e


def _snippet(resp: httpx.Response, n: int = 160) -> str:
    try:
        text = resp.text
    except Exception:  # undecodable body
        text = ""
    text = " ".join(text.split())
    return (text[:n] + "…") if len(text) > n else (text or resp.reason_phrase)
