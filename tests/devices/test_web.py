"""web: private addresses refused before any connection; a real local server when allowed."""

from __future__ import annotations

import http.server
import threading

import pytest

from llmos.devices.base import invoke
from llmos.devices.web import WebDevice, refusal

PAGE = (b"<html><head><title>Test page</title><style>.x{color:red}</style></head><body>"
        b"<h1>Hello</h1><p>Fish &amp; chips</p><script>steal()</script><ul><li>one</li><li>two</li></ul>"
        b"</body></html>")


@pytest.fixture(scope="module")
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/redirect-out":
                self.send_response(302)
                self.send_header("Location", "http://10.0.0.1/admin")
                self.end_headers()
                return
            if self.path == "/big":
                body = b"A" * 100_000
                ctype = "text/plain"
            elif self.path == "/image":
                body, ctype = b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png"
            elif self.path == "/":
                body, ctype = PAGE, "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1/", "loopback"),
    ("http://localhost:8080/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://100.64.0.1/", "non-public"),
])
def test_private_addresses_are_refused(url, why):
    result = invoke(WebDevice(), {"url": url})
    assert result.error is not None and f"{why} address" in result.error and "allow_private" in result.error


def test_the_local_server_is_refused_by_default_and_fetched_when_allowed(server):
    assert "loopback" in invoke(WebDevice(), {"url": server + "/"}).error
    result = invoke(WebDevice(allow_private=True), {"url": server + "/"})
    assert result.error is None
    assert result.output == "Test page\n\nHello\nFish & chips\none\ntwo"
    assert "steal" not in result.output and "color" not in result.output
    assert result.data["status"] == 200 and result.data["title"] == "Test page"


def test_size_limit_status_and_content_type(server):
    web = WebDevice(allow_private=True, max_bytes=1000)
    big = invoke(web, {"url": server + "/big"})
    assert big.output.startswith("A" * 1000) and big.output.endswith("[... page cut at 1000 bytes]")
    assert invoke(web, {"url": server + "/missing"}).error == "HTTP 404 Not Found"
    assert "image/png, not text" in invoke(web, {"url": server + "/image"}).error


def test_redirects_are_checked_at_every_hop(server, monkeypatch):
    # Let the test server count as public; the redirect it sends to 10.0.0.1 must still be refused.
    from llmos.devices import web

    real = web.refusal
    monkeypatch.setattr(web, "refusal", lambda address: None if address == "127.0.0.1" else real(address))
    assert invoke(WebDevice(), {"url": server + "/"}).error is None
    result = invoke(WebDevice(), {"url": server + "/redirect-out"})
    assert result.error is not None and "refusing 10.0.0.1" in result.error and "private address" in result.error


def test_bad_urls():
    assert "not an http(s) URL" in invoke(WebDevice(), {"url": "file:///etc/passwd"}).error
    assert "user name or password" in invoke(WebDevice(), {"url": "http://a:b@example.com/"}).error
    assert refusal("8.8.8.8") is None and refusal("2606:4700:4700::1111") is None
