"""Who may call the service: a bearer token from `RLAIF_SERVE_TOKEN`, compared in constant time.

Without a token the service only binds a loopback address (127.0.0.1 by default); on any other address
it refuses to start (`check_bind`). With a token, every endpoint but `/healthz` needs
`Authorization: Bearer TOKEN`. The token is registered with `rlaif.redact`, so no error text repeats it.
"""
from __future__ import annotations

import hmac
import ipaddress
import os

from rlaif.errors import ConfigError
from rlaif.redact import remember_secret
from rlaif.serve.limits import ApiError

TOKEN_ENV = "RLAIF_SERVE_TOKEN"
OPEN_PATHS = ("/healthz",)  # a load balancer's health check carries no token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_token() -> str | None:
    token = os.environ.get(TOKEN_ENV) or None
    if token is not None:
        remember_secret(token)
    return token


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (before any model is loaded)."""
    if token is None and not is_loopback(host):
        raise ConfigError(f"--host {host} is reachable from other machines and {TOKEN_ENV} is not set. Fix: set "
                          f"{TOKEN_ENV} to a long random secret (clients send 'Authorization: Bearer ${TOKEN_ENV}'), "
                          "or bind 127.0.0.1")


def check_token(token: str | None, authorization: str | None) -> None:
    """Raise 401 unless the request's bearer token is the server's (no token configured: anyone)."""
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "unauthorized", f"this service needs 'Authorization: Bearer ${TOKEN_ENV}' (the "
                                            f"value of {TOKEN_ENV} on the server): set {TOKEN_ENV} on the client",
                       headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "the bearer token is not this service's",
                       headers={"WWW-Authenticate": "Bearer"})
