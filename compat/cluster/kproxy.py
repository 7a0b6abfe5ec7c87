"""A TCP proxy in front of one broker that forwards Kafka frames both ways
and, once told to, withholds the answers to Produce requests: the broker
appends (and replicates and commits) the batches, the client never learns.
That is the state a producer is in when a leader dies between appending
and answering, made deterministic for the cluster tests.

A node is put behind it by advertising the proxy's address as the node's
listener (advertised.listeners), so every client and every follower that
reaches the node goes through it; only Produce answers are ever withheld,
so replication (Fetch) and metadata keep flowing. When either end closes,
both ends are closed, as a dead broker's connections are.
"""

from __future__ import annotations

import socket
import struct
import threading

from kraft import HOST, free_ports

PRODUCE = 0


def read_frame(sock: socket.socket) -> bytes | None:
    """One size-prefixed Kafka frame (size included), or None at EOF."""
    head = read_exactly(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    if size < 0:
        return None
    body = read_exactly(sock, size)
    return None if body is None else head + body


def read_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        try:
            chunk = sock.recv(min(left, 1 << 16))
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class ProduceBlackhole:
    """Listens on HOST at `port`, forwards to `upstream` (host, port)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = free_ports(1)[0]
        self.withhold = threading.Event()
        self.withheld = 0
        self._lock = threading.Lock()
        self._produce_ids: set[tuple[int, int]] = set()  # (connection, correlation id)
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server((HOST, self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def _accept(self) -> None:
        conn_id = 0
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            conn_id += 1
            with self._lock:
                self._socks += [client, server]
            pair = (client, server)
            threading.Thread(target=self._requests, args=(conn_id, pair), daemon=True).start()
            threading.Thread(target=self._responses, args=(conn_id, pair), daemon=True).start()

    def _requests(self, conn_id: int, pair: tuple[socket.socket, socket.socket]) -> None:
        client, server = pair
        while (frame := read_frame(client)) is not None:
            if len(frame) >= 12:
                api_key, _, correlation_id = struct.unpack(">hhi", frame[4:12])
                if api_key == PRODUCE:
                    with self._lock:
                        self._produce_ids.add((conn_id, correlation_id))
            try:
                server.sendall(frame)
            except OSError:
                break
        self._close(pair)

    def _responses(self, conn_id: int, pair: tuple[socket.socket, socket.socket]) -> None:
        client, server = pair
        while (frame := read_frame(server)) is not None:
            key = (conn_id, struct.unpack(">i", frame[4:8])[0]) if len(frame) >= 8 else None
            with self._lock:
                produce = key in self._produce_ids
                self._produce_ids.discard(key)
                if produce and self.withhold.is_set():
                    self.withheld += 1
                    continue
            try:
                client.sendall(frame)
            except OSError:
                break
        self._close(pair)

    @staticmethod
    def _close(pair: tuple[socket.socket, socket.socket]) -> None:
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
