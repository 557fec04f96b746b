"""SIGTERM without resets: every request the kernel accepted gets an answer, within `--drain-timeout`.

uvicorn's own shutdown closes the listening socket first: the connections still in the kernel's accept
queue are then reset, and so are requests that reached an open connection but were not read yet; at its
timeout it cancels what is left and the client sees the connection drop. `DrainingServer` drains instead:

1. draining: the listener stays open and keeps accepting; every request that starts now is answered 503
   with `Retry-After` and `Connection: close` (`/healthz` too, so a load balancer stops sending), and the
   requests already being served go on;
2. when they are done, or at `--drain-timeout` (where each still running is answered 503 instead), the
   accept queue is emptied by hand and the listener closed in the same step of the event loop, so no
   connection is left in it to reset; the connections just taken are answered 503 like the others;
3. every answer during the drain says `Connection: close`; connections that have sent nothing get
   `LINGER_S` (within the deadline) to send their request, then uvicorn's shutdown closes the idle ones and
   ends the lifespan (the coalescers stop).

What stays: a handshake that completes in the microseconds between the last accept and the close, and a
request written to an idle keep-alive connection in the instant it is closed (HTTP/1.1's own race).
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

import uvicorn
from starlette.responses import JSONResponse

RETRY_AFTER_S = 5  # a restart or another replica takes about this long to be there
LINGER_S = 1.0  # after the listener closes: how long an open connection may take to send its request


@dataclass
class Drain:
    """What the routes and the server share about stopping (all on the event loop's thread)."""

    draining: bool = False
    expired: bool = False
    tasks: set[asyncio.Task] = field(default_factory=set)  # requests being served (not the 503 answers)

    def refusal(self, why: str) -> JSONResponse:
        return JSONResponse({"error": {"code": "draining", "message": f"{why}: send it again in {RETRY_AFTER_S}s "
                                       "(to this address once it is back, or to another replica)",
                                       "retry_after": RETRY_AFTER_S}},
                            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S), "Connection": "close"})

    def expire(self) -> None:
        """The deadline: each request still being served stops waiting and answers 503."""
        self.expired = True
        for t in list(self.tasks):
            t.cancel()


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, drain_timeout: float):
        super().__init__(config)
        self.drain, self.drain_timeout = drain, drain_timeout

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout
        self.drain.draining = True
        while self.drain.tasks and loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.02)
        if self.drain.tasks:
            self.drain.expire()
        await self._close_listeners(sockets or [])
        # Every answer now says Connection: close, so each connection that sends a request goes away by itself;
        # the ones still open after LINGER_S sent nothing (idle keep-alive, or a client slow to write) and close.
        linger_until = min(deadline, loop.time() + LINGER_S)
        while self.server_state.connections and loop.time() < linger_until and not self.force_exit:
            await asyncio.sleep(0.02)
        self.config.timeout_graceful_shutdown = max(1.0, deadline - loop.time())  # the 503s are being written
        await super().shutdown(sockets)

    async def _close_listeners(self, sockets: list[socket.socket]) -> None:
        """Accept every connection waiting in the kernel's queue, then close the listener: no await in between."""
        taken: list[socket.socket] = []
        for sock in sockets:
            sock.setblocking(False)
            while True:
                try:
                    conn, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionAbortedError:  # one that died in the queue
                    continue
                except OSError:  # already closed
                    break
                taken.append(conn)
        for server in self.servers:
            server.close()
        for sock in sockets:
            sock.close()
        loop = asyncio.get_running_loop()
        for conn in taken:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.connect_accepted_socket(self._protocol, conn)

    def _protocol(self) -> asyncio.Protocol:
        """What uvicorn's listener builds for each connection (its factory is local to `startup`)."""
        c = self.config
        return c.http_protocol_class(config=c, server_state=self.server_state, app_state=self.lifespan.state,
                                     _loop=asyncio.get_running_loop())
