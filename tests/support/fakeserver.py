"""A loopback HTTP server that speaks the OpenAI chat-completions and Anthropic messages
protocols, with fault injection, for driving the real SDKs offline.

    from fakeserver import FakeServer, Fault, Reply   # pytest puts tests/ on sys.path

    with FakeServer(reply=lambda call: f"echo: {call.prompt}", latency_s=0.1) as srv:
        backend = get_backend("openai:fake", base_urls=[srv.openai_url])      # .../v1
        backend = get_backend("anthropic:fake", base_urls=[srv.anthropic_url])
        srv.fail_next(Fault.rate_limit(retry_after=0.05), Fault.server_error())
        ...
        srv.count              # requests received, faulted ones included
        srv.calls[0].body      # the parsed JSON body; .prompt is the last user turn

`reply(call)` runs for every request that no queued fault claims; it may return a str,
a `Reply` (text, log-probs, token counts, finish reason) or a `Fault`. Without one, the
server answers "echo: <last user turn>". Faults: HTTP status with an API-shaped error body
(429 with Retry-After, 500, 401, ...), `hang` (answer only after N seconds), `malformed`
(a truncated JSON body), `drop` (close the connection without answering), and
`Fault.auth_echo(status)`: an error whose body repeats the request's `Authorization` and
`x-api-key` headers, as careless proxies do (the key must never get past rlaif's call layer).
A ThreadingHTTPServer with keep-alive: one thread per connection, so latency overlaps.
Run it alone with `python tests/support/fakeserver.py --latency 0.1`: it prints its URL, then serves
until killed.
"""
from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    """One request the server received."""

    api: str  # "openai" or "anthropic"
    path: str
    body: dict | None
    headers: dict[str, str]
    received: float = field(default_factory=time.time)

    @property
    def prompt(self) -> str:
        msgs = (self.body or {}).get("messages") or []
        users = [m.get("content") for m in msgs if m.get("role") == "user"]
        content = users[-1] if users else ""
        return content if isinstance(content, str) else json.dumps(content)


@dataclass
class Reply:
    text: str
    top_logprobs: list[dict[str, float]] | None = None  # per leading position: token -> logprob
    input_tokens: int | None = None  # default: words in the request's messages
    output_tokens: int | None = None  # default: words in text
    finish_reason: str = "stop"  # OpenAI's names; mapped for Anthropic


@dataclass
class Fault:
    kind: str  # "status" | "hang" | "malformed" | "drop"
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    message: str = "injected fault"
    echo_auth: bool = False  # append the request's auth headers to the message

    @classmethod
    def rate_limit(cls, retry_after: float | None = None) -> Fault:
        return cls("status", 429, retry_after=retry_after, message="Rate limit reached; slow down")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status, message="The server had an error while processing your request")

    @classmethod
    def unauthorized(cls) -> Fault:
        # Worded (final period included) as api.openai.com words it.
        return cls("status", 401, message="Incorrect API key provided. You can find your API key in your "
                                          "account settings.")

    @classmethod
    def auth_echo(cls, status: int = 500, retry_after: float | None = 0.0) -> Fault:
        """An error that quotes the request's auth headers back (retry_after=0: retried without a wait)."""
        return cls("status", status, retry_after=retry_after, message="upstream rejected the request",
                   echo_auth=True)

    @classmethod
    def http(cls, status: int, message: str) -> Fault:
        return cls("status", status, message=message)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        return cls("hang", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed")

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")


_ANTHROPIC_ERROR = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens"}


def _words(body: dict) -> int:
    n = 0
    for m in body.get("messages") or []:
        c = m.get("content")
        n += len((c if isinstance(c, str) else json.dumps(c)).split())
    return n + len(str(body.get("system") or "").split())


def _fake_logprobs(text: str, k: int, given: list[dict[str, float]] | None) -> list[dict]:
    """OpenAI `logprobs.content`: given positions first, then the words of the text."""
    positions = list(given or [])
    if not positions:
        for i, word in enumerate(text.split(" ")[:8]):
            tok = word if i == 0 else " " + word
            positions.append({tok: -0.05, **{f"{tok}~{j}": -2.0 - j for j in range(1, max(k, 1))}})
    content = []
    for pos in positions:
        ranked = sorted(pos.items(), key=lambda kv: -kv[1])
        best = ranked[0]
        content.append({"token": best[0], "logprob": best[1], "bytes": None,
                        "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in ranked[:k]]})
    return content


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real API servers do
    disable_nagle_algorithm = True  # else headers and body in two writes meet delayed ACKs: +40 ms a call
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        path = self.path.split("?")[0]
        api = "anthropic" if path.endswith("/messages") else "openai"
        owner = self.server.owner
        call = Call(api=api, path=path, body=body, headers={k.lower(): v for k, v in self.headers.items()})
        fault = owner._record(call)
        if not path.endswith(("/chat/completions", "/messages")):
            return self._error(api, Fault.http(404, f"no route {path}"))
        if fault is None:
            out = owner.reply(call) if owner.reply else f"echo: {call.prompt}"
            if isinstance(out, Fault):
                fault = out
            else:
                reply = Reply(out) if isinstance(out, str) else out
        if owner.latency_s:
            time.sleep(owner.latency_s)
        if fault is not None:
            if fault.kind == "status":
                return self._error(api, fault, call)
            if fault.kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.kind == "malformed":
                return self._send(200, b'{"id": "x", "choices": [{"message": {"content": "trunc', {})
            if fault.kind == "hang":
                time.sleep(fault.seconds)
                reply = Reply(f"echo: {call.prompt}")
        self._send_json(200, self._openai(body or {}, reply) if api == "openai" else self._anthropic(body or {}, reply))

    def _openai(self, body: dict, r: Reply) -> dict:
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": r.text},
                                  "finish_reason": r.finish_reason, "logprobs": None}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": _fake_logprobs(r.text, int(body.get("top_logprobs") or 0),
                                                            r.top_logprobs)}
        n_in = r.input_tokens if r.input_tokens is not None else _words(body)
        n_out = r.output_tokens if r.output_tokens is not None else len(r.text.split())
        return {"id": f"chatcmpl-{self.server.owner.count}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "fake"), "choices": [choice],
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}

    def _anthropic(self, body: dict, r: Reply) -> dict:
        n_in = r.input_tokens if r.input_tokens is not None else _words(body)
        n_out = r.output_tokens if r.output_tokens is not None else len(r.text.split())
        return {"id": f"msg_{self.server.owner.count}", "type": "message", "role": "assistant",
                "model": body.get("model", "fake"), "content": [{"type": "text", "text": r.text}],
                "stop_reason": _ANTHROPIC_STOP.get(r.finish_reason, r.finish_reason), "stop_sequence": None,
                "usage": {"input_tokens": n_in, "output_tokens": n_out}}

    def _error(self, api: str, f: Fault, call: Call | None = None) -> None:
        message = f.message
        if f.echo_auth and call is not None:
            echoed = {k: call.headers[k] for k in ("authorization", "x-api-key") if k in call.headers}
            token = (call.headers.get("authorization") or "").removeprefix("Bearer ") or call.headers.get("x-api-key")
            message = f"{message} for token {token}; request headers: {json.dumps(echoed)}"
        if api == "anthropic":
            body = {"type": "error", "error": {"type": _ANTHROPIC_ERROR.get(f.status, "api_error"),
                                               "message": message}}
        else:
            body = {"error": {"message": message, "type": "fake_error", "param": None, "code": str(f.status)},
                    **({"request_headers": echoed} if f.echo_auth and call is not None else {})}
        headers = {"retry-after": f"{f.retry_after:g}"} if f.retry_after is not None else {}
        self._send_json(f.status, body, headers)

    def _send_json(self, status: int, obj: dict, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers or {})

    def _send(self, status: int, data: bytes, headers: dict) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # many clients connect at once in the concurrency benchmark
    owner: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):  # a killed client: expected
            super().handle_error(request, client_address)


class FakeServer:
    """See the module docstring. Start/stop with `with`, or `.start()` / `.stop()`."""

    def __init__(self, reply: Callable[[Call], str | Reply | Fault] | None = None, *, latency_s: float = 0.0,
                 host: str = "127.0.0.1", port: int = 0):
        self.reply = reply
        self.latency_s = latency_s
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakeserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, so only when it runs
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def fail_next(self, *faults: Fault) -> None:
        """Queue faults: each of the next requests gets one, in order."""
        with self._lock:
            self._faults.extend(faults)

    def _record(self, call: Call) -> Fault | None:
        with self._lock:
            self._calls.append(call)
            return self._faults.pop(0) if self._faults else None

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faults.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description="serve the fake OpenAI/Anthropic API on loopback")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = ap.parse_args()
    srv = FakeServer(latency_s=args.latency, port=args.port)
    print(srv.url, flush=True)
    srv._httpd.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
