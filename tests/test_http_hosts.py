"""The HTTP client over many hosts: a connection per host kept for the next request to it, and no more
than KEPT_HOSTS hosts' connections kept open at once (a daemon with a thousand feeds on a thousand
hosts holds a bounded number of sockets)."""

from __future__ import annotations

import asyncio
import socket

from listener.sources.http import KEPT_HOSTS, HttpClient, HttpSettings


class Hosts:
    """A tiny HTTP/1.1 keep-alive server on 127.0.0.10 .. (10 + n - 1), one port; counts connections."""

    def __init__(self, n: int):
        self.n, self.opened, self.open = n, 0, 0

    async def handle(self, reader, writer):
        self.opened += 1
        self.open += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def start(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.10", 0))
            self.port = s.getsockname()[1]
        self.servers = [await asyncio.start_server(self.handle, f"127.0.0.{10 + i}", self.port) for i in range(self.n)]
        return self.port

    def url(self, i: int) -> str:
        return f"http://127.0.0.{10 + i}:{self.port}/"


def test_connections_are_kept_per_host_and_bounded_over_many_hosts():
    async def go():
        few = Hosts(KEPT_HOSTS // 2)
        await few.start()
        async with HttpClient(HttpSettings(per_host=1)) as http:
            for _ in range(3):
                for i in range(few.n):
                    assert (await http.get(few.url(i))).body == b"ok"
            assert few.opened == few.n  # every host's connection was used again

        many = Hosts(KEPT_HOSTS + 40)
        await many.start()
        async with HttpClient(HttpSettings(per_host=1)) as http:
            for i in range(many.n):
                assert (await http.get(many.url(i))).status == 200
            for _ in range(600):  # until the server has seen the closed ones go
                if many.open <= KEPT_HOSTS:
                    break
                await asyncio.sleep(0.05)
            assert many.open <= KEPT_HOSTS
            assert (await http.get(many.url(many.n - 1))).status == 200  # the newest is still kept
            assert many.opened == many.n
        for server in few.servers + many.servers:
            server.close()

    asyncio.run(go())
