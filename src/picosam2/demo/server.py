"""Running the demo app with uvicorn: on a socket bound beforehand (so a busy port is a clear
error and port 0 picks a free one), in the foreground (the CLI) or in a background thread
(tests, notebooks)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port).
    Raises RuntimeError with a one-line message when it cannot be bound."""
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RuntimeError(f"cannot resolve host {host!r}: {exc}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); try another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def make_server(app, log_level: str = "warning"):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


class ServerThread:
    """``with ServerThread(app) as url: ...``: serves ``app`` on 127.0.0.1 (a free port unless
    given) in a daemon thread until the block ends."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self.server = None
        self.thread = None
        self.url = None

    def __enter__(self) -> str:
        sock = bind_socket(self.host, self.port)
        self.url = url_for(sock)
        self.server = make_server(self.app, self.log_level)
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
