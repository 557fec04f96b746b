"""Request limits and the JSON errors of the service.

Every refusal is `{"error": {"code", "message", ...}}` with an HTTP status: a limit names itself
(`limit`), the value allowed and the `rlaif serve` flag that raises it (`fix`); a malformed request names
the `field`. Body size is checked from Content-Length before the body is read, and again while reading
(a chunked body has no length).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_ITEMS = 1024
DEFAULT_MAX_TEXT_CHARS = 100_000


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
