from __future__ import annotations

import base64
import io
import random
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from PIL import Image as PILImage

from bizstream.errors import ImageRefused
from bizstream.images import decode, fetch_url, load_image
from bizstream.records import Image
from bizstream.settings import LimitSettings


def png(width: int, height: int, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    PILImage.new(mode, (width, height)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_small_images_load_from_inline_data_and_paths(tmp_path: Path) -> None:
    limits = LimitSettings(image_root=str(tmp_path))
    (tmp_path / "a.png").write_bytes(png(4, 4))
    assert load_image(Image(path="a.png"), limits).size == (4, 4)
    inline = Image(data=base64.b64encode(png(3, 2)).decode(), mime="image/png")
    assert load_image(inline, limits).size == (3, 2)


def test_an_oversized_image_is_refused(tmp_path: Path) -> None:
    limits = LimitSettings(max_image_bytes=1000, image_root=str(tmp_path))
    noisy = io.BytesIO()
    PILImage.frombytes("L", (100, 100), random.Random(0).randbytes(10_000)).save(noisy, format="PNG")  # incompressible
    (tmp_path / "big.png").write_bytes(noisy.getvalue())
    with pytest.raises(ImageRefused, match="more than limits.max_image_bytes=1000"):
        load_image(Image(path="big.png"), limits)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png(20_000, 20_000, mode="1")  # 400 million pixels in a few kilobytes: Pillow's own guard refuses it
    assert len(bomb) < 100_000
    with pytest.raises(ImageRefused, match="decompression bomb"):
        decode(bomb, LimitSettings())
    big = png(5_000, 5_000, mode="1")  # 25 million: under Pillow's guard, over ours
    with pytest.raises(ImageRefused, match=r"5000x5000 = 25000000 pixels, more than limits.max_image_pixels=16000000"):
        decode(big, LimitSettings())
    with pytest.raises(ImageRefused, match="not an image Pillow can read"):
        decode(b"\x89PNG\r\n\x1a\n not really", LimitSettings())


def test_paths_outside_the_image_root_are_refused(tmp_path: Path) -> None:
    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.png").write_bytes(png(2, 2))
    limits = LimitSettings(image_root=str(tmp_path / "inside"))
    for path in ("../secret.png", str(tmp_path / "secret.png"), "/etc/passwd"):
        with pytest.raises(ImageRefused, match="outside limits.image_root"):
            load_image(Image(path=path), limits)


def test_disallowed_urls_are_refused() -> None:
    with pytest.raises(ImageRefused, match="image URL fetching is off"):
        fetch_url("https://i.4cdn.org/biz/1.png", LimitSettings())
    on = LimitSettings(fetch_image_urls=True, image_url_hosts=["4cdn.org"])
    with pytest.raises(ImageRefused, match="host 'evil.example' is not in limits.image_url_hosts"):
        fetch_url("https://evil.example/x.png", on)
    with pytest.raises(ImageRefused, match="only http"):
        fetch_url("file:///etc/passwd", on)
    # An allowed name that resolves to a private address (here loopback) is refused: no SSRF into the network.
    local = LimitSettings(fetch_image_urls=True, image_url_hosts=["localhost"])
    with pytest.raises(ImageRefused, match="non-public address"):
        fetch_url("http://localhost:9/x.png", local)


def test_redirects_are_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    # Pretend the allowed host is public and lives at our local server, to exercise the redirect rule itself.
    monkeypatch.setattr("bizstream.images._public_address", lambda host, port, url: "127.0.0.1")
    limits = LimitSettings(fetch_image_urls=True, image_url_hosts=["img.example"])
    try:
        with pytest.raises(ImageRefused, match="not following the redirect"):
            fetch_url(f"http://img.example:{port}/a.png", limits)
    finally:
        server.shutdown()
