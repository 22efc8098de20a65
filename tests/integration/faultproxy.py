"""A TCP proxy that injects network faults between a client and a server, switched at run time.

    with FaultProxy("127.0.0.1", 19000) as proxy:   # listens on 127.0.0.1:proxy.port
        proxy.forward(delay_s=0.3)   # every chunk arrives 300 ms late, in both directions
        proxy.blackhole()            # connections are accepted, nothing is forwarded either way
        proxy.reset()                # open and new connections are reset (RST, SO_LINGER 0)
        proxy.forward()              # healthy again

A blackhole is a network that silently drops packets: bytes sent into it vanish, nothing comes
back, and a connection that lived through it stays dead after it ends (the state along the path
is gone), so the client has to notice by its own timeout or by a later reset. Resets behave like a
peer that lost its state: it answers every segment, and every new connection, with RST.
The proxy runs an asyncio loop in a daemon thread; the switches are synchronous.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field

FORWARD, BLACKHOLE, RESET = "forward", "blackhole", "reset"
CHUNK_BYTES = 65536


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    dead: bool = False  # lived through a blackhole: never forwards again
    tasks: list = field(default_factory=list)


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.mode = FORWARD
        self.delay_s = 0.0
        self.accepted = 0  # connections accepted, whatever the mode
        self.resets = 0  # connections reset on purpose
        self.forwarded_bytes = 0
        self._conns: set[_Conn] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> "FaultProxy":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accept, self.host, 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"faultproxy->{self.target[1]}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or not self._loop.is_running():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def forward(self, delay_s: float = 0.0) -> None:
        """Forward everything, each chunk `delay_s` late (order kept, throughput not limited)."""
        self._call(self._switch(FORWARD, delay_s))

    def blackhole(self) -> None:
        self._call(self._switch(BLACKHOLE, 0.0))

    def reset(self) -> None:
        self._call(self._switch(RESET, 0.0))

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ------------------------------------------------------------------ the loop's side
    async def _switch(self, mode: str, delay_s: float) -> None:
        self.mode, self.delay_s = mode, delay_s
        if mode == BLACKHOLE:
            for conn in self._conns:
                conn.dead = True
        elif mode == RESET:
            for conn in list(self._conns):
                self._abort(conn)

    async def _shutdown(self) -> None:
        self._server.close()
        for conn in list(self._conns):
            self._abort(conn)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = _Conn(writer)
        if self.mode == RESET:
            self._abort(conn)
            return
        self._conns.add(conn)
        if self.mode == BLACKHOLE:
            conn.dead = True
            await self._swallow(conn, reader)
            return
        try:
            up_reader, conn.upstream = await asyncio.open_connection(*self.target)
        except OSError:
            self._abort(conn)
            return
        conn.tasks = [asyncio.ensure_future(self._pump(conn, reader, conn.upstream, from_client=True)),
                      asyncio.ensure_future(self._pump(conn, up_reader, writer, from_client=False))]

    async def _swallow(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        """Read and drop what a blackholed client sends, until it gives up or is reset."""
        try:
            while await reader.read(CHUNK_BYTES):
                pass
        except OSError:
            pass
        self._close(conn)

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    from_client: bool) -> None:
        """Copy one direction; a delay queue keeps chunk order without limiting throughput."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if data is None:
                    return
                wait_s = due - loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                if conn.dead:
                    continue
                writer.write(data)
                self.forwarded_bytes += len(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                if not conn.dead:
                    queue.put_nowait((loop.time() + self.delay_s, data))
            queue.put_nowait((loop.time() + self.delay_s, None))
            await delivering
        except (OSError, asyncio.CancelledError):
            delivering.cancel()
        if conn.dead and not from_client:
            return  # the server went away behind the blackhole: the client hears nothing of it
        self._close(conn)

    def _abort(self, conn: _Conn) -> None:
        """RST to the client (SO_LINGER 0, then close), and drop the upstream connection."""
        self._conns.discard(conn)
        sock = conn.client.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        conn.client.transport.abort()
        if conn.upstream is not None:
            conn.upstream.transport.abort()
        for task in conn.tasks:
            task.cancel()
        self.resets += 1

    def _close(self, conn: _Conn) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        conn.client.close()
        if conn.upstream is not None:
            conn.upstream.close()
