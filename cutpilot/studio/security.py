"""Who may talk to the studio, and from where: bearer token, CSRF double-submit, loopback-only by default.

- With `CUTPILOT_API_TOKEN` set, every route wants `Authorization: Bearer <token>`; a browser gets it as an
  HttpOnly cookie from `/login?token=<token>`.
- CSRF (double submit): every response sets a `cutpilot_csrf` cookie (templates read `request.state.csrf_token`);
  an unsafe request (POST/PATCH/PUT/DELETE) must send the same value in `X-CSRF-Token` or a `csrf_token` form
  field, unless it carries a valid bearer header (not a cookie) or is JSON from no other origin (a browser cannot
  send cross-origin JSON without a CORS preflight, and the studio allows no CORS). In a multipart form the
  `csrf_token` field must come before the files (it is looked for in the first 256 KB).
- `check_bind`: anything but loopback needs a token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cutpilot.errors import InputError

CSRF_COOKIE = "cutpilot_csrf"
TOKEN_COOKIE = "cutpilot_token"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_MULTIPART_FIELD = re.compile(rb'name="csrf_token"\r\n(?:[^\r\n]+\r\n)*\r\n([A-Za-z0-9_-]{1,200})\r\n')
FORM_PEEK = 256 * 1024
FORM_MAX = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token (one line, exit 2)."""
    if not is_loopback(host) and not (token and token.strip()):
        raise InputError(f"refusing to bind {host}: set CUTPILOT_API_TOKEN to serve beyond loopback "
                         "(or bind 127.0.0.1)")


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        out[k.decode("latin-1").lower()] = v.decode("latin-1")
    return out


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed cookie header is no cookie at all
        return {}
    return {k: m.value for k, m in jar.items()}


def _cross_origin(h: dict[str, str]) -> bool:
    """Whether the request comes from another site (an Origin naming another host, or the browser says so)."""
    if h.get("sec-fetch-site", "") == "cross-site":
        return True
    origin = h.get("origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != h.get("host", "").lower()


async def _reply(send: Send, status: int, error: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    """Pure ASGI (a form body read to find its token is replayed to the app untouched)."""

    def __init__(self, app: ASGIApp, *, token: str | None = None) -> None:
        self.app = app
        self.token = token.strip() if token and token.strip() else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        h = _headers(scope)
        cookies = _cookies(h.get("cookie", ""))
        path = scope.get("path", "")
        bearer = False
        if self.token:
            auth = h.get("authorization", "")
            bearer = auth[:7].lower() == "bearer " and _same(auth[7:].strip(), self.token)
            if path == "/login":
                await self._login(scope, send)
                return
            if not bearer and not _same(cookies.get(TOKEN_COOKIE), self.token):
                await _reply(send, 401, "this studio needs its API token: send Authorization: Bearer <token> "
                             "(browsers: open /login?token=<token>)", [(b"www-authenticate", b"Bearer")])
                return
        elif path == "/login":
            await _redirect(send, "/", [])
            return
        have = cookies.get(CSRF_COOKIE, "")
        fresh = not _TOKEN_RE.match(have)
        csrf = secrets.token_urlsafe(32) if fresh else have
        scope.setdefault("state", {})["csrf_token"] = csrf
        if scope.get("method", "GET").upper() in UNSAFE and not bearer:
            ctype = h.get("content-type", "").split(";")[0].strip().lower()
            if not (ctype == "application/json" and not _cross_origin(h)):
                sent = h.get(CSRF_HEADER)
                if not sent and ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                    sent, receive, too_big = await _form_token(receive, ctype)
                    if too_big:
                        await _reply(send, 413, "form body too large")
                        return
                if fresh or not _same(sent, have):
                    await _reply(send, 403, "CSRF check failed: send the page's csrf_token (form field or "
                                 "X-CSRF-Token header), or JSON from this origin")
                    return

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                if fresh:
                    headers.append((b"set-cookie",
                                    f"{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict".encode()))
                headers += [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"same-origin")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapped)

    async def _login(self, scope: Scope, send: Send) -> None:
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if not _same(given, self.token):
            await _reply(send, 401, "wrong or missing token")
            return
        cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await _redirect(send, "/", [(b"set-cookie", cookie.encode())])


async def _redirect(send: Send, to: str, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", to.encode()), (b"content-length", b"0"), *headers]})
    await send({"type": "http.response.body", "body": b""})


async def _form_token(receive: Receive, ctype: str) -> tuple[str | None, Receive, bool]:
    """Read enough of a form body to find its csrf_token; returns it and a receive that replays what was read."""
    buffered: list[Message] = []
    data = b""
    more = True
    limit = FORM_MAX if ctype == "application/x-www-form-urlencoded" else FORM_PEEK
    found: str | None = None
    while more and len(data) < limit:
        msg = await receive()
        buffered.append(msg)
        if msg["type"] != "http.request":
            break
        data += msg.get("body", b"")
        more = bool(msg.get("more_body"))
        if ctype == "multipart/form-data":
            m = _MULTIPART_FIELD.search(data)
            if m:
                found = m.group(1).decode()
                break
    if ctype == "application/x-www-form-urlencoded":
        if more:
            return None, receive, True
        found = parse_qs(data.decode("latin-1")).get(CSRF_FIELD, [None])[0]
    pending = list(buffered)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return found, replay, False
