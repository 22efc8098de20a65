"""The fault proxy itself, against a local echo server: delay, blackhole and reset do what they say."""
from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from faultproxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy("127.0.0.1", server.server_address[1]) as p:
        yield p
    server.shutdown()
    server.server_close()


def _connect(proxy: FaultProxy, timeout_s: float = 2.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout_s)


def _echo(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_forwards_and_delays_both_ways(proxy):
    with _connect(proxy) as sock:
        assert _echo(sock, b"x" * 200_000) == b"x" * 200_000
        proxy.forward(delay_s=0.25)
        started = time.monotonic()
        assert _echo(sock, b"ping") == b"ping"
        assert time.monotonic() - started >= 0.5  # 250 ms out, 250 ms back


def test_blackhole_swallows_and_its_connections_stay_dead(proxy):
    before = _connect(proxy)
    assert _echo(before, b"a") == b"a"
    proxy.blackhole()
    during = _connect(proxy, timeout_s=0.5)  # still accepted
    for sock in (before, during):
        sock.sendall(b"lost")
        with pytest.raises(socket.timeout):
            sock.settimeout(0.5)
            sock.recv(10)
    proxy.forward()
    with pytest.raises(socket.timeout):
        before.recv(10)  # no late delivery, no FIN: silence
    with _connect(proxy) as after:
        assert _echo(after, b"back") == b"back"
    before.close()
    during.close()


def test_reset_kills_open_and_new_connections(proxy):
    open_before = _connect(proxy)
    assert _echo(open_before, b"a") == b"a"
    proxy.reset()
    with pytest.raises(ConnectionResetError):
        open_before.sendall(b"b")
        open_before.recv(10)
    with pytest.raises(ConnectionResetError):
        sock = _connect(proxy)
        sock.sendall(b"c")
        sock.recv(10)
    assert proxy.resets >= 2
    proxy.forward()
    with _connect(proxy) as sock:
        assert _echo(sock, b"ok") == b"ok"
