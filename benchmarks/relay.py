"""Tiny TCP relays for fault tests and benchmarks: lose the next reply, stall, or delay replies.

The fault tests put them between a client and a redis-server of their own; benchmark row 7
delays the run's Redis with one.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time


class Relay:
    """Forwards 127.0.0.1:<port> to an upstream port, one pair of threads per connection.

    Subclasses change what happens to the upstream's replies (``_reply``) or how a connection
    is served (``_serve``).
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream_port = upstream_port
        self.upstream_host = upstream_host
        self.connections = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """A redis:// URL through the relay."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(
                    (self.upstream_host, self.upstream_port), timeout=5
                )
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.connections += 1
            self._sockets += [client, upstream]
            self._serve(client, upstream)

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _reply(self, data: bytes) -> bytes | None:
        """What to pass on of a chunk from upstream: b"" holds it back, None ends the link."""
        return data

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                out = self._reply(data) if replies else data
                if out is None:
                    break
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        self._close(src, dst)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


class ReplyDroppingProxy(Relay):
    """A relay whose ``drop_next_reply()`` loses one reply (and closes that connection).

    The upstream server has executed the command whose reply is dropped: exactly the "lost
    reply" a client cannot tell from a command that never arrived.
    """

    def __init__(self, upstream_port: int) -> None:
        self._drop = threading.Event()
        self.dropped = 0
        super().__init__(upstream_port)

    def drop_next_reply(self) -> None:
        """Make the next reply from upstream vanish, and close that client connection."""
        self._drop.set()

    def _reply(self, data: bytes) -> bytes | None:
        if self._drop.is_set():
            self._drop.clear()
            self.dropped += 1
            return None
        return data


class StallingLink(Relay):
    """A relay whose upstream-to-client direction can stall: what arrives meanwhile is held
    back for good (read, not left in a socket buffer the client could still drain later).

    On a replication link (master upstream, replica client), a master that dies while the link
    is stalled takes what the replica never got with it.
    """

    def __init__(self, upstream_port: int) -> None:
        self.stalled = threading.Event()
        self.held = 0
        super().__init__(upstream_port)

    def _reply(self, data: bytes) -> bytes | None:
        if self.stalled.is_set():
            self.held += len(data)
            return b""
        return data


class DelayingProxy(Relay):
    """A relay that holds every reply back ``delay_s``.

    Requests go through at once; each chunk the upstream sends is passed on ``delay_s`` after
    it arrived (replies are not queued behind each other's delays). ``delay_s`` may be changed
    while the proxy runs: it applies to replies that arrive afterwards.
    """

    def __init__(
        self, upstream_port: int, delay_s: float, upstream_host: str = "127.0.0.1"
    ) -> None:
        self.delay_s = delay_s
        super().__init__(upstream_port, upstream_host)

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        replies: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        for target, args in (
            (self._forward, (client, upstream)),
            (self._receive, (upstream, replies)),
            (self._deliver, (replies, client, upstream)),
        ):
            threading.Thread(target=target, args=args, daemon=True).start()

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)

    def _receive(
        self, upstream: socket.socket, replies: queue.Queue[tuple[float, bytes] | None]
    ) -> None:
        try:
            while data := upstream.recv(65536):
                replies.put((time.monotonic() + self.delay_s, data))
        except OSError:
            pass
        replies.put(None)

    def _deliver(
        self,
        replies: queue.Queue[tuple[float, bytes] | None],
        client: socket.socket,
        upstream: socket.socket,
    ) -> None:
        try:
            while (item := replies.get()) is not None:
                due, data = item
                time.sleep(max(0.0, due - time.monotonic()))
                client.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)
