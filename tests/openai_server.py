"""A local OpenAI-compatible chat-completions server (stdlib http.server on 127.0.0.1) for real HTTP round trips
of the LLM planner through langchain-openai. It answers like a function-calling model: the reply's tool call is
built from the request (the tool the client forces, the candidates it was shown), and it can be told to fail
(HTTP 500, a stall past the client timeout, malformed JSON arguments) for the next N requests, or to answer a
given step with scripted near-misses first (`srv.script["StoryboardDraft"] = [reply, ...]`, each an assistant
message dict or a function of the request body: a tool call with odd arguments, JSON in the text, no tool call)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_BRIEF = {"product": None, "angle": "侧睡纹", "duration_s": 30, "aspect": "9:16", "lang": "zh",
                 "formats": [], "must_include": [], "must_avoid": []}


class PlannerServer:
    """`with PlannerServer() as s:` → s.base_url ('http://127.0.0.1:PORT/v1'); s.requests holds every body."""

    def __init__(self, brief: dict[str, Any] | None = None) -> None:
        self.brief = dict(DEFAULT_BRIEF, **(brief or {}))
        self.requests: list[dict[str, Any]] = []
        self.fail: list[str] = []  # e.g. ["500", "timeout", "badjson"], consumed one per request
        self.stall_s = 3.0
        self.script: dict[str, list[Any]] = {}  # step tool name → scripted replies, used before the defaults
        self._srv: ThreadingHTTPServer | None = None

    def step_requests(self, tool: str) -> list[dict[str, Any]]:
        """The requests that offered `tool` (BriefDraft, StoryboardDraft, choose_clips, Script)."""
        return [b for b in self.requests if tool in [t["function"]["name"] for t in b.get("tools", [])]]

    # -- what the "model" answers
    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        tools = [t["function"]["name"] for t in body.get("tools", [])]
        msgs = body.get("messages", [])
        for name in tools:
            if self.script.get(name):
                reply = self.script[name].pop(0)
                return reply(body) if callable(reply) else dict(reply)
        if "BriefDraft" in tools:
            products = []
            for m in msgs:
                text = str(m.get("content", ""))
                if "Library products:" in text:
                    line = text.split("Library products:", 1)[1].splitlines()[0].strip()
                    products = json.loads(line)
            return self._call("BriefDraft", dict(self.brief, product=self.brief.get("product")
                                                 or (products[0] if products else None)))
        if "StoryboardDraft" in tools:
            return self._call("StoryboardDraft", {"music_mood": "energetic", "slots": [
                {"role": "hook", "seconds": 3, "query": "侧睡纹 痛点", "intent": "stop the scroll"},
                {"role": "pain_point", "seconds": 7, "query": "侧睡 压力 哑铃", "intent": "the pain"},
                {"role": "product_intro", "seconds": 7, "query": "紫熨斗眼霜 全新升级", "intent": "the product"},
                {"role": "feature_demo", "seconds": 8, "query": "小弹簧 功效", "intent": "proof"},
                {"role": "offer_cta", "seconds": 5, "query": "优惠", "intent": "buy now"}]})
        if "choose_clips" in tools:
            searched = any(m.get("role") == "tool" for m in msgs)
            if not searched:  # first round: look around once, like a real agent would
                return self._call("search_clips", {"slot": 0, "query": "侧睡 细纹"})
            seen: dict[int, list[str]] = {}
            for m in msgs:
                text = str(m.get("content", ""))
                if "<clip_data>" in text and m.get("role") != "system":
                    data = json.loads(text.split("<clip_data>", 1)[1].split("</clip_data>", 1)[0])
                    for row in data if isinstance(data, list) else [data]:
                        seen.setdefault(int(row["slot"]), []).extend(c["clip_id"] for c in row["candidates"])
            used: set[str] = set()
            choices = []
            for slot in sorted(seen):
                pick = next((c for c in seen[slot] if c not in used), None)
                if pick:
                    used.add(pick)
                choices.append({"slot": slot, "clip_id": pick})
            return self._call("choose_clips", {"choices": choices})
        if "Script" in tools:
            lines = []
            for m in msgs:
                text = str(m.get("content", ""))
                if "<clip_data>" in text and m.get("role") != "system":
                    rows = json.loads(text.split("<clip_data>", 1)[1].split("</clip_data>", 1)[0])
                    for r in rows:
                        lines.append({"slot": r["slot"], "line": "侧睡纹，一觉淡褪"[: max(2, r["max_units"])]})
            return self._call("Script", {"lines": lines})
        return {"role": "assistant", "content": "ok"}

    @staticmethod
    def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}

    call = _call  # for tests scripting a reply: PlannerServer.call("StoryboardDraft", {...})

    @staticmethod
    def text(content: str) -> dict[str, Any]:
        """A reply with no tool call: prose, a bare JSON answer, or a fenced ```json block."""
        return {"role": "assistant", "content": content}

    # -- http
    def __enter__(self) -> PlannerServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                return

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                owner.requests.append(body)
                mode = owner.fail.pop(0) if owner.fail else ""
                if mode == "500":
                    self._send(500, {"error": {"message": "upstream exploded", "type": "server_error"}})
                    return
                if mode == "timeout":
                    time.sleep(owner.stall_s)
                try:
                    msg = owner.answer(body)
                except Exception as e:  # a bug in the fake must show up as a server error, not a hang
                    self._send(500, {"error": {"message": f"test server: {e!r}", "type": "server_error"}})
                    return
                if mode == "badjson" and msg.get("tool_calls"):
                    msg["tool_calls"][0]["function"]["arguments"] = "{not json"
                t_in = max(1, len(json.dumps(body.get("messages", []), ensure_ascii=False)) // 4)
                t_out = max(1, len(json.dumps(msg, ensure_ascii=False)) // 4)
                self._send(200, {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                                 "model": body.get("model", "test"),
                                 "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"
                                              if msg.get("tool_calls") else "stop"}],
                                 "usage": {"prompt_tokens": t_in, "completion_tokens": t_out,
                                           "total_tokens": t_in + t_out}})

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._srv.daemon_threads = True
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        assert self._srv is not None
        return f"http://127.0.0.1:{self._srv.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
