"""``web``: fetch one page over HTTP(S) and return its text (risk ask).

Stdlib only (``http.client``, ``html.parser``). Before connecting, the host
is resolved and *every* address it has is checked: loopback, private,
link-local, shared, reserved, multicast and unspecified addresses (IPv4, IPv6
and IPv4-mapped IPv6) are refused unless the device was made with
``allow_private=True``, so a page cannot make llmos reach the user's router,
a cloud metadata service or a local admin port. The connection then goes to
the address that was checked (the request still names the host, and TLS
still verifies its certificate), so a DNS answer that changes between check
and connect (DNS rebinding) gains nothing. Redirects are followed by hand, at
most five, each hop checked again. Proxy settings from the environment are
ignored.

Limits: ``timeout_s`` for the whole fetch, ``max_bytes`` of body read (the
rest is not downloaded). HTML becomes text (scripts, styles and markup
dropped, blocks on their own lines); other text types are returned as they
are; anything else is refused. Cookies, JavaScript and forms are out of scope.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.errors import DeviceError

MAX_BYTES = 2 * 1024 * 1024
TIMEOUT_S = 15.0
MAX_REDIRECTS = 5
USER_AGENT = "llmos-web/0.1 (+https://github.com/llmos)"
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml", "application/rss+xml",
              "application/atom+xml", "application/javascript")


def refusal(address: str) -> str | None:
    """Why ``address`` (an IP) must not be fetched without allow_private, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attr in ("is_loopback", "is_link_local", "is_unspecified", "is_multicast", "is_reserved", "is_private"):
        if getattr(ip, attr):
            return f"{attr[3:].replace('_', '-')} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to; DeviceError if the host has none or any one is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeviceError(f"cannot resolve host {host!r} ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise DeviceError(f"host {host!r} has no address")
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why:
                raise DeviceError(f"refusing {host}: it resolves to a {why} (only public addresses; "
                                  "set allow_private in the web device's config to change this)")
    return addresses[0]


class _Pinned(http.client.HTTPConnection):
    """HTTP to a checked address, whatever DNS says now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is verified for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


class _Text(HTMLParser):
    """Visible text of an HTML page: blocks on their own lines, scripts and styles dropped."""

    SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
             "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "dd", "dt", "nav", "main", "form"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.skipping = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "title":
            self.in_title = True
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag == "title":
            self.in_title = False
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML document."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = re.sub(r"\n{2,}", "\n", "\n".join(lines)).strip()
    return " ".join("".join(parser.title).split()), text


class WebDevice(Device):
    name = "web"
    description = "fetch a web page (http or https) and return its text"
    schema = {
        "type": "object",
        "properties": {"url": {"type": "string", "minLength": 8, "maxLength": 2048}},
        "required": ["url"],
        "additionalProperties": False,
    }
    risk = Risk.ASK

    def __init__(self, allow_private: bool = False, timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    def call(self, args: dict) -> DeviceResult:
        deadline = time.monotonic() + self.timeout_s
        url = args["url"]
        for _hop in range(MAX_REDIRECTS + 1):
            status, reason, headers, body, cut = self._get(url, deadline)
            location = headers.get("location")
            if status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                continue
            break
        else:
            raise DeviceError(f"more than {MAX_REDIRECTS} redirects")
        ctype = headers.get("content-type", "text/plain")
        mime = ctype.split(";")[0].strip().lower()
        if not mime.startswith(TEXT_TYPES):
            raise DeviceError(f"{url} is {mime}, not text; web returns text only")
        charset = re.search(r"charset=[\"']?([\w.:-]+)", ctype)
        try:
            text = body.decode(charset.group(1) if charset else "utf-8", "replace")
        except LookupError:
            text = body.decode("utf-8", "replace")
        title = ""
        if mime in ("text/html", "application/xhtml+xml"):
            title, text = html_text(text)
        note = f"\n[... page cut at {self.max_bytes} bytes]" if cut else ""
        data = {"url": url, "status": status, "content_type": mime, "title": title, "bytes": len(body),
                "cut": cut}
        head = f"{title}\n\n" if title else ""
        error = f"HTTP {status} {reason}" if status >= 400 else None
        return DeviceResult(output=head + text + note, data=data, error=error)

    def _get(self, url: str, deadline: float) -> tuple[int, str, dict[str, str], bytes, bool]:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise DeviceError(f"{url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise DeviceError("URLs with a user name or password are refused")
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise DeviceError(f"bad port in {url!r}") from None
        address = resolve(parts.hostname, port, self.allow_private)
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeviceError(f"timed out after {self.timeout_s:g} s")
        kind = _PinnedTLS if parts.scheme.lower() == "https" else _Pinned
        conn = kind(parts.hostname, port, address, timeout=left)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity",
                                               "Accept": "text/html, text/plain;q=0.9, */*;q=0.5"})
            resp = conn.getresponse()
            chunks, size = [], 0
            while size <= self.max_bytes:
                if time.monotonic() > deadline:
                    raise DeviceError(f"timed out after {self.timeout_s:g} s reading {url}")
                chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            body = b"".join(chunks)
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, resp.reason, headers, body[: self.max_bytes], len(body) > self.max_bytes
        except (OSError, http.client.HTTPException) as exc:
            raise DeviceError(f"fetching {url} failed ({type(exc).__name__}: {exc})") from None
        finally:
            conn.close()
