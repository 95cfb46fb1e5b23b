"""Loading a post's image safely: inline bytes, a local path, or (only when allowed) a URL.

Every image is bounded in bytes and in pixels, the pixel count read from the header before anything is decoded, and
decoded under Pillow's decompression-bomb guard. Paths must stay inside ``limits.image_root``. URLs are off by
default; when on, only allow-listed hosts, only public addresses (the address checked is the one connected to), no
redirects, a byte limit and a timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import logging
import re
import socket
import ssl
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image as PILImage

from bizstream.errors import ImageRefused
from bizstream.records import Image, Post
from bizstream.settings import LimitSettings

log = logging.getLogger(__name__)


def load_image(image: Image, limits: LimitSettings) -> PILImage.Image:
    """The decoded image (RGB), or ImageRefused saying which limit or rule it broke."""
    if image.data is not None:
        data = image.inline_bytes() or b""
    elif image.path is not None:
        data = _read_path(image.path, limits)
    elif image.url is not None:
        data = fetch_url(image.url, limits)
    else:
        raise ImageRefused("the image has no data, path or url")
    return decode(data, limits)


def loaded_images(posts: Sequence[Post], limits: LimitSettings) -> list[tuple[int, PILImage.Image]]:
    """(position, image) for each post of a batch whose image loads within the limits; a refused image is logged and
    costs only its own post (an image analyzer returns None for it)."""
    ready: list[tuple[int, PILImage.Image]] = []
    for i, post in enumerate(posts):
        if post.image is None:
            continue
        try:
            ready.append((i, load_image(post.image, limits)))
        except ImageRefused as exc:
            log.warning("post %s: image refused: %s", post.id, exc)
    return ready


def decode(data: bytes, limits: LimitSettings) -> PILImage.Image:
    """Check size, then header pixel count, then decode with decompression-bomb warnings as errors."""
    if len(data) > limits.max_image_bytes:
        raise ImageRefused(f"image is {len(data)} bytes, more than limits.max_image_bytes={limits.max_image_bytes}")
    with _guarded():
        opened = _open_within(data, limits)
        opened.load()
        return opened.convert("RGB")


def check_header(data: bytes, limits: LimitSettings) -> tuple[int, int]:
    """(width, height) from the image header alone, nothing decoded; ImageRefused when it cannot be read or has too
    many pixels. Post validation runs this on inline images; :func:`decode` runs it before decoding."""
    with _guarded():
        with _open_within(data, limits) as opened:
            return opened.size


def _open_within(data: bytes, limits: LimitSettings) -> PILImage.Image:
    opened = PILImage.open(io.BytesIO(data))  # lazy: reads the header only
    width, height = opened.size
    if width * height > limits.max_image_pixels:
        raise ImageRefused(
            f"image is {width}x{height} = {width * height} pixels, more than "
            f"limits.max_image_pixels={limits.max_image_pixels} (a decompression bomb?)"
        )
    return opened


@contextlib.contextmanager
def _guarded() -> Iterator[None]:
    """Pillow's decompression-bomb warnings as errors, and every way Pillow refuses bytes as ImageRefused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            yield
    except ImageRefused:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise ImageRefused(f"image refused as a decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        said = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exc))  # Pillow names its buffer by address
        raise ImageRefused(f"not an image Pillow can read: {said}") from None


def _read_path(path: str, limits: LimitSettings) -> bytes:
    root = Path(limits.image_root).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ImageRefused(f"image path {path!r} is outside limits.image_root ({root})")
    try:
        with target.open("rb") as fh:
            data = fh.read(limits.max_image_bytes + 1)
    except OSError as exc:
        raise ImageRefused(f"cannot read image {path!r}: {exc.strerror or exc}") from None
    if len(data) > limits.max_image_bytes:
        raise ImageRefused(f"image {path!r} is more than limits.max_image_bytes={limits.max_image_bytes} bytes")
    return data


def fetch_url(url: str, limits: LimitSettings) -> bytes:
    """GET an allowed image URL within the limits; refuses anything else with the reason."""
    if not limits.fetch_image_urls:
        raise ImageRefused(f"not fetching {url!r}: image URL fetching is off (limits.fetch_image_urls = false)")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ImageRefused(f"not fetching {url!r}: only http(s) URLs with a host")
    if not any(host == h or host.endswith("." + h) for h in (h.lower() for h in limits.image_url_hosts)):
        raise ImageRefused(f"not fetching {url!r}: host {host!r} is not in limits.image_url_hosts")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _public_address(host, port, url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        # Connect to the checked address, but verify the certificate against the host name.
        connection = _PinnedHTTPS(host, address, port, limits.image_fetch_timeout_s, ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(address, port, timeout=limits.image_fetch_timeout_s)
    try:
        path = parts.path or "/"
        connection.request("GET", path + (f"?{parts.query}" if parts.query else ""), headers={"Host": host})
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise ImageRefused(f"not following the redirect from {url!r} (status {response.status})")
        if response.status != 200:
            raise ImageRefused(f"fetching {url!r} answered {response.status}")
        data = response.read(limits.max_image_bytes + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise ImageRefused(f"fetching {url!r} failed: {exc}") from None
    finally:
        connection.close()
    if len(data) > limits.max_image_bytes:
        raise ImageRefused(f"{url!r} is more than limits.max_image_bytes={limits.max_image_bytes} bytes")
    return data


def _public_address(host: str, port: int, url: str) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ImageRefused(f"not fetching {url!r}: cannot resolve {host!r} ({exc})") from None
    addresses = [info[4][0] for info in infos]
    private = [a for a in addresses if not ipaddress.ip_address(a).is_global]
    if private or not addresses:
        raise ImageRefused(f"not fetching {url!r}: {host!r} resolves to a non-public address {private or addresses}")
    return str(addresses[0])


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed, already-checked IP address, with SNI and certificate checks for the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        """Open the TCP connection to the checked address, then TLS for the host name."""
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)  # type: ignore[attr-defined]
