"""The shared outbound client: size cap on answers, private addresses refused, no redirects."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tovplus.errors import Forbidden
from tovplus.integrations.http import outbound_client

pytestmark = pytest.mark.no_db
BIG = 200_000


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("location", "/small")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        size = BIG if self.path == "/big" else 100
        self.send_response(200)
        if self.path != "/big-chunked":
            self.send_header("content-length", str(size))
            self.end_headers()
            self.wfile.write(b"x" * size)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for _ in range(20):
            chunk = b"y" * 10_000
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _client(*, allow_private: bool = True, limit: int | None = 50_000) -> httpx.Client:
    return outbound_client(
        allow_private=allow_private,
        timeout=httpx.Timeout(5),
        pool_size=2,
        user_agent="test",
        max_response_bytes=limit,
    )


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_an_answer_over_the_cap_fails_as_a_read_error(base_url, path):
    with _client() as client, pytest.raises(httpx.ReadError, match="larger than 50000 bytes"):
        client.get(base_url + path)


def test_answers_under_the_cap_and_uncapped_clients_read_normally(base_url):
    with _client() as client:
        assert client.get(base_url + "/small").content == b"x" * 100
    with _client(limit=None) as client:
        assert len(client.get(base_url + "/big").content) == BIG


def test_redirects_are_not_followed(base_url):
    with _client() as client:
        assert client.get(base_url + "/redirect").status_code == 302


def test_private_addresses_and_plain_http_are_refused_unless_allowed(base_url):
    with _client(allow_private=False) as client:
        with pytest.raises(Forbidden, match="https"):
            client.get(base_url + "/small")
        with pytest.raises(Forbidden, match="non-public"):
            client.get(base_url.replace("http://", "https://") + "/small")
