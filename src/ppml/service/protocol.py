"""Connection limits uvicorn does not have: a header deadline and connections per client.

uvicorn closes a connection that stays idle after a response
(``timeout_keep_alive``), but any byte restarts that wait, and nothing
bounds how long a client may take to send its request's headers: a client
that sends one header byte every few seconds ("slowloris") holds its
connection forever, and enough of them keep everyone else out.
:func:`guarded_h11_protocol` makes a subclass of uvicorn's h11 protocol
that adds, per connection:

- a **header deadline**: the request line and headers must be complete
  within ``header_timeout`` seconds of connecting, or of the previous
  response (a client still reading that response gets more time as long as
  it reads). Otherwise the connection is dropped. Once the headers are in,
  the application bounds the body (app.py) and the computation (lanes.py).
- a **per-client connection cap**: a client address with more than
  ``max_connections_per_client`` connections open has new ones closed at
  once (trusted proxies excepted: they carry many clients).
- a **global connection cap** that answers in the service's JSON shape: from
  ``max_connections`` open connections on, requests get a 503 with
  ``Retry-After`` and their connection is closed; well past it (an eighth
  more), new connections are closed at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger("ppml.service")


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection, and one client's connections, may hold of the server."""

    header_timeout: float
    max_connections: int
    max_connections_per_client: int
    trusted_proxies: tuple[str, ...] = ()

    @property
    def hard_max_connections(self) -> int:
        """Connections beyond this are closed without a word."""
        return self.max_connections + max(16, self.max_connections // 8)


def address_matcher(entries: Sequence[str]) -> Callable[[str], bool]:
    """Whether an address is one of ``entries`` (addresses, networks, or ``*`` for any)."""
    if "*" in entries:
        return lambda _: True
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a Unix socket path or a literal name: never a TCP peer address
    literals = frozenset(entries)

    def matches(host: str) -> bool:
        if host in literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in networks)

    return matches


def _json_error(
    code: str, message: str, *extra: tuple[bytes, bytes]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of an error in the service's shape, for answers made below the app."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
        (b"connection", b"close"),
    ]
    return headers, body


def guarded_h11_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the limits above; pass it to uvicorn as ``http=``."""
    is_trusted_proxy = address_matcher(limits.trusted_proxies)
    busy_headers, busy_body = _json_error(
        "overloaded", "too many open connections; retry later", (b"retry-after", b"1")
    )
    bad_headers, bad_body = _json_error(
        "bad_request", "not a valid HTTP/1.1 request, or its headers are too large"
    )

    class GuardedH11Protocol(H11Protocol):
        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._header_timer: asyncio.TimerHandle | None = None
            self._timed_cycle: object = None
            self._unsent_bytes = 0
            inner = self.app
            connections = self.connections

            async def app(
                scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
            ) -> None:
                # uvicorn's own limit_concurrency answers in plain text; this
                # one answers like every other refusal of the service.
                if scope["type"] == "http" and len(connections) > limits.max_connections:
                    await send(
                        {"type": "http.response.start", "status": 503, "headers": busy_headers}
                    )
                    await send({"type": "http.response.body", "body": busy_body})
                    return
                await inner(scope, receive, send)

            self.app = app

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.hard_max_connections:
                transport.abort()
                return
            host = self.client[0] if self.client else None
            if host is not None and not is_trusted_proxy(host):
                same = sum(
                    1
                    for other in self.connections
                    if (address := getattr(other, "client", None)) and address[0] == host
                )
                if same > limits.max_connections_per_client:
                    log.debug("closing a connection from %s: %d already open", host, same - 1)
                    transport.abort()
                    return
            self._start_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._header_timer is not None and self.cycle is not self._timed_cycle:
                # A new request's headers are complete: the application bounds the rest.
                self._stop_header_timer()

        def on_response_complete(self) -> None:
            finished = self.cycle
            super().on_response_complete()
            # Unless a pipelined request has already started, the client now
            # has header_timeout seconds to send its next request's headers;
            # bytes of a body the service refused without reading do not count.
            if not self.transport.is_closing() and self.cycle is finished:
                self._start_header_timer()

        def send_400_response(self, msg: str) -> None:
            # uvicorn answers a request h11 cannot parse in plain text; this
            # answers in the service's shape (the detail goes to uvicorn's log).
            event = h11.Response(status_code=400, headers=bad_headers, reason=b"Bad Request")
            try:
                for part in (event, h11.Data(data=bad_body), h11.EndOfMessage()):
                    self.transport.write(self.conn.send(part) or b"")
            except h11.LocalProtocolError:
                pass  # an answer was already sent on this connection: just close it
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def _start_header_timer(self) -> None:
            self._stop_header_timer()
            self._timed_cycle = self.cycle
            self._unsent_bytes = self.transport.get_write_buffer_size()
            self._header_timer = self.loop.call_later(limits.header_timeout, self._header_late)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.cycle is not self._timed_cycle:
                return
            unsent = self.transport.get_write_buffer_size()
            if 0 < unsent < self._unsent_bytes:
                # Still reading the previous answer, and making progress.
                self._start_header_timer()
                return
            log.debug("closing a connection from %s: no request headers in time", self.client)
            self.transport.abort()

    return GuardedH11Protocol
