"""Request limits and the JSON errors of the service.

Every refusal is `{"error": {"code", "message", ...}}` with an HTTP status: a limit names itself
(`limit`), the value allowed and the `rlaif serve` flag that raises it (`fix`); a malformed request names
the `field`. Body size is checked from Content-Length before the body is read, and again while reading
(a chunked body has no length). JSON nested deeper than `MAX_JSON_DEPTH` is a 400 like any malformed body:
Python's parser (and every recursive step after it) would otherwise end in a RecursionError, a 500.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_ITEMS = 1024
DEFAULT_MAX_TEXT_CHARS = 100_000
MAX_JSON_DEPTH = 64  # no request shape needs more than a handful; labels are the only free-form part
_TOO_DEEP = object()  # what json.loads gave when it ran out of stack


@dataclass
class Limits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_items: int = DEFAULT_MAX_ITEMS
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS


class ApiError(Exception):
    """A refusal with its status and JSON body (`headers`: e.g. Retry-After)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers or {}, extra

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def limit_error(status: int, limit: str, flag: str, allowed: int, got: int, what: str) -> ApiError:
    return ApiError(status, "limit_exceeded", f"{what}: {got} is over the limit of {allowed}", limit=limit,
                    allowed=allowed, got=got, fix=f"send less, or start the service with a higher {flag}")


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over `max_body_bytes`."""
    cap = limits.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise limit_error(413, "max_body_bytes", "--max-body-bytes", cap, int(declared), "request body bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise limit_error(413, "max_body_bytes", "--max-body-bytes", cap, size, "request body bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the client closed the connection before the body ended") from None
    return b"".join(chunks)


def check_items(n: int, limits: Limits, field: str, allow_empty: bool = False) -> None:
    if n > limits.max_items:
        raise limit_error(422, "max_items", "--max-items", limits.max_items, n, f"items in '{field}'")
    if n == 0 and not allow_empty:
        raise ApiError(422, "invalid_request", f"'{field}' is empty: send at least one item", field=field)


def check_text(text: str, limits: Limits, field: str) -> None:
    if len(text) > limits.max_text_chars:
        raise limit_error(422, "max_text_chars", "--max-text-chars", limits.max_text_chars, len(text),
                          f"characters in '{field}'")


def load_json(body: bytes) -> Any:
    """The body as JSON, or ApiError 400: not JSON, or nested deeper than MAX_JSON_DEPTH."""
    # Fewer brackets in all than the limit (the usual case, counted in C) cannot nest deeper: no walk needed.
    deep = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    try:
        data = json.loads(body)
    except RecursionError:
        data = _TOO_DEEP
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {e}") from None
    if deep and _depth_over(data, MAX_JSON_DEPTH):
        raise ApiError(400, "too_deep", f"the body's JSON nests more than {MAX_JSON_DEPTH} levels deep; no "
                                        "request needs that: send the documented shape", allowed=MAX_JSON_DEPTH)
    return data


def check_json_text(text: str, field: str) -> None:
    """A string the service parses as JSON when it looks like JSON (an OpenRLHF label): the same depth limit."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    try:
        data = json.loads(text)
    except RecursionError:
        data = _TOO_DEEP
    except ValueError:  # not JSON: plain text (a reference answer)
        return
    if _depth_over(data, MAX_JSON_DEPTH):
        raise ApiError(400, "too_deep", f"'{field}' holds JSON nested more than {MAX_JSON_DEPTH} levels deep; no "
                                        "label needs that: send the constraints as a flat list", field=field,
                       allowed=MAX_JSON_DEPTH)


def _depth_over(data: Any, limit: int) -> bool:
    """Whether lists/objects nest more than `limit` deep (_TOO_DEEP: the parser gave up). Iterative: no recursion."""
    if data is _TOO_DEEP:
        return True
    stack = [(data, 1)] if isinstance(data, (list, dict)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (list, dict)))
    return False
