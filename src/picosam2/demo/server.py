"""Running the demo app with uvicorn: on a socket bound beforehand (so a busy port is a clear
error and port 0 picks a free one), in the foreground (the CLI) or in a background thread
(tests, notebooks)."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time

from ..errors import UsageError

#: Seconds a connection may take to send a request's headers (new or kept-alive connection).
HEADER_TIMEOUT_S = 10.0
#: Seconds an idle kept-alive connection stays open.
KEEP_ALIVE_S = 5
#: Open connections served at once; more are answered 503 and closed.
MAX_CONNECTIONS = 64
#: Largest request head (request line + headers) in bytes.
MAX_HEADER_BYTES = 16 * 1024

log = logging.getLogger("picosam2.demo")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port).
    Raises UsageError with a one-line message when it cannot be bound."""
    if not 0 <= int(port) <= 65535:
        raise UsageError(f"port must be 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve host {host!r}: {exc}") from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); try another --port") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _raw_json(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\ncache-control: no-store\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(header_timeout: float = HEADER_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS):
    """uvicorn's h11 protocol with the server's own answers in JSON and slow clients cut off:

    * a malformed request (bad ``Content-Length``, garbage, headers over the size cap) gets a
      JSON 400 instead of uvicorn's plain text;
    * a connection that has not sent a whole request head within ``header_timeout`` seconds
      (a new connection, or a kept-alive one after its last answer) gets a JSON 408 and is closed;
    * beyond ``max_connections`` open connections, a new one gets a JSON 503 and is closed, so
      a crowd of stalled clients cannot take the server from the others.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._head_timer = None
            if len(self.connections) > max_connections:
                log.warning("too many open connections (%d): refusing %s", len(self.connections), self.client)
                transport.write(_raw_json(503, "Service Unavailable", "the server is busy: too many open connections"))
                transport.close()
                return
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timeout)

        def _cancel_head_timer(self) -> None:
            if getattr(self, "_head_timer", None) is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
                return
            log.warning("client %s sent no complete request in %g s: connection closed", self.client, header_timeout)
            self.transport.write(_raw_json(408, "Request Timeout", "request headers not received in time"))
            self.transport.close()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a whole request head arrived
                self._cancel_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()

        def connection_lost(self, exc) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            self._cancel_head_timer()
            self.transport.write(_raw_json(400, "Bad Request", f"malformed HTTP request ({msg.rstrip('.')})"))
            self.transport.close()

    return GuardedH11Protocol


def make_server(app, log_level: str = "warning", header_timeout: float = HEADER_TIMEOUT_S):
    """A uvicorn server for ``app`` with the limits above (:func:`guarded_protocol`, keep-alive
    :data:`KEEP_ALIVE_S`, request heads up to :data:`MAX_HEADER_BYTES`)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=guarded_protocol(header_timeout),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    return uvicorn.Server(config)


class ServerThread:
    """``with ServerThread(app) as url: ...``: serves ``app`` on 127.0.0.1 (a free port unless
    given) in a daemon thread until the block ends."""

    def __init__(
        self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", header_timeout=HEADER_TIMEOUT_S
    ):
        self.app = app
        self.header_timeout = header_timeout
        self.host = host
        self.port = port
        self.log_level = log_level
        self.server = None
        self.thread = None
        self.url = None

    def __enter__(self) -> str:
        sock = bind_socket(self.host, self.port)
        self.url = url_for(sock)
        self.server = make_server(self.app, self.log_level, self.header_timeout)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start")
            time.sleep(0.02)
        self._sock = sock
        return self.url

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self._sock.close()
        return False
