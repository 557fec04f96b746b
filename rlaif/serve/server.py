"""Running the service: bind, load, print the URL, serve until SIGTERM, drain, exit 0.

The socket is bound here once the scorers are loaded (port 0 picks a free port), so the URL printed is the
real one; `rlaif serve: http://HOST:PORT` goes to stdout once the coalescers run. SIGTERM (or Ctrl-C)
drains (`rlaif.serve.drain`): new requests are answered 503 with Retry-After, those in flight finish within
`--drain-timeout`, and no connection the kernel accepted is reset; the process then exits 0 (uvicorn would
re-raise the signal, which exits -15: ours is caught). The service's own log lines (`rlaif.serve`: a hostile
body refused, an internal error) go to stderr, one line each.
"""
from __future__ import annotations

import logging
import signal
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlaif.errors import ConfigError
from rlaif.serve.auth import check_bind, server_token
from rlaif.serve.limits import Limits
from rlaif.serve.loading import ScorerOptions, load_scorers

if TYPE_CHECKING:
    from rlaif.serve.app import Batching
    from rlaif.serve.scorers import Scorers


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    drain_timeout: float = 60.0
    log_level: str = "warning"
    unscored_reward: float | None = None  # /get_reward's value for an unscored item (None: null)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets; without it every answer written in two
    # parts (headers, body) waits for the client's delayed ACK: +40 ms a request
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror or e}). Fix: pick another --port "
                          "(0 = any free port) or --host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def probe_flags(scorers: Scorers) -> list[dict]:
    """The loaded judges whose latest `rlaif probe` failed the master-key probe (printed at start-up)."""
    from rlaif.judge.probe_store import master_key_flags

    raters = [p.rater for p in scorers.point.values() if p.kind == "judge"] + [p.rater for p in scorers.pair.values()]
    return master_key_flags(raters)


def serve(scorer_options: ScorerOptions, options: ServeOptions, limits: Limits, batching: Batching) -> None:
    """Start the service and block until it is told to stop (see the module docstring)."""
    import uvicorn

    from rlaif.serve.app import Service, build_app
    from rlaif.serve.drain import DrainingServer

    token = server_token()
    check_bind(options.host, token)  # before any model loads: a refusal costs nothing
    scorers = load_scorers(scorer_options)
    try:
        flags = probe_flags(scorers)
        sock = _bind(options.host, options.port)
    except BaseException:
        scorers.close()
        raise
    service = Service(scorers, limits=limits, batching=batching, token=token,
                      unscored_reward=options.unscored_reward)
    url = url_of(sock)

    def ready() -> None:
        print(f"rlaif serve: {url}", flush=True)
        print(f"  scorers: {', '.join([*scorers.point, *scorers.pair])}; /get_reward uses '{scorers.reward}'",
              file=sys.stderr, flush=True)
        for name in scorers.pair:
            print(f"  /get_reward?group={name}: a group of k samples costs k(k-1) judge calls (all pairs, both "
                  f"orders); &pairs=M: about M·k", file=sys.stderr, flush=True)
        for f in flags:
            print(f"warning: {f['message']}", file=sys.stderr, flush=True)

    app = build_app(service, on_ready=ready)
    config = uvicorn.Config(app, log_level=options.log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=options.drain_timeout, server_header=False)
    server = DrainingServer(config, service.drain, options.drain_timeout)
    _log_to_stderr(options.log_level)
    stopped: list[int] = []
    # uvicorn restores these after its shutdown and re-raises the signal it caught: end quietly with 0
    previous = {sig: signal.signal(sig, lambda s, _f: stopped.append(s)) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        scorers.close()
    if not server.started:
        raise ConfigError(f"the service did not start on {url}; see the messages above")


def _log_to_stderr(level: str) -> None:
    log = logging.getLogger("rlaif.serve")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rlaif serve: %(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(getattr(logging, level.upper(), logging.WARNING))  # uvicorn's "trace" is below debug
