"""A third-party analyzer in a separately installed package is discovered through its entry point and used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT, child_env

pytestmark = pytest.mark.slow


def test_installed_package_is_discovered_and_scores(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "bizstream_shouty").mkdir(parents=True)
    (source / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "bizstream-shouty"
        version = "1.0"
        [project.entry-points.bizstream]
        shouty = "bizstream_shouty"
    """))
    # The README's example plugin, packaged as its own pyproject shows.
    (source / "bizstream_shouty" / "__init__.py").write_text((ROOT / "docs" / "examples" / "shouty.py").read_text())
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site), str(source)],
        check=True,
    )  # fmt: skip
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    env["BIZSTREAM_BROKER__CACHE_DIR"] = str(tmp_path / "cache")
    env["BIZSTREAM_SETFIT__STARTER"] = "false"
    listing = subprocess.run([sys.executable, "-m", "bizstream", "plugins"], env=env, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert "bizstream_shouty" in listing.stdout and "shouty" in listing.stdout

    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'{"id": "a", "text": "WAGMI"}\n{"id": "b", "text": "wagmi"}\n')
    env["BIZSTREAM_FUSION__WEIGHTS__VADER"] = "0"  # fuse the third-party analyzer alone
    scored = subprocess.run([sys.executable, "-m", "bizstream", "score", str(posts)], env=env, capture_output=True)
    assert scored.returncode == 0, scored.stderr
    scores = {s["post_id"]: s for s in map(orjson.loads, scored.stdout.splitlines())}
    assert scores["a"]["analyzers"]["shouty"]["model_version"] == "1"
    assert scores["a"]["label"] == "bullish" and scores["b"]["label"] == "neutral"
