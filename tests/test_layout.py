"""The layout the README promises: every package is installed, plugins own their model code, and none imports
another plugin (they ask the host)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import ROOT


def test_every_package_folder_is_listed_in_pyproject() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bizstream").rglob("__init__.py")}
    found |= {".".join(("bizstream_plugins", *p.parent.relative_to(ROOT / "plugins").parts)).rstrip(".")
              for p in (ROOT / "plugins").rglob("__init__.py")}  # fmt: skip
    # Folders of data only (the dashboard's static files) are listed too, or setuptools warns on every install.
    def folder(name: str) -> Path:
        top, *rest = name.split(".")
        return ROOT.joinpath(setuptools["package-dir"].get(top, top), *rest)

    data_only = {name for name in setuptools["package-data"] if not (folder(name) / "__init__.py").exists()}
    assert data_only and all(folder(name).is_dir() for name in data_only)
    assert listed == found | data_only


def _imports(path: object) -> set[str]:
    tree = ast.parse(path.read_text())  # type: ignore[attr-defined]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_a_plugin_imports_no_other_plugin_and_the_host_imports_no_plugin() -> None:
    for folder in (p for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file()):
        for path in folder.rglob("*.py"):
            others = {m for m in _imports(path) if m.startswith("bizstream_plugins.") and m.split(".")[1] != folder.name}
            assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}; ask the host instead"
    # The CLI may reach into a plugin for a command that is that plugin's own (export onnx, train sarcasm); the rest of
    # the host never does.
    for path in (ROOT / "bizstream").rglob("*.py"):
        if "cli" in path.relative_to(ROOT).parts:
            continue
        plugins = {m for m in _imports(path) if m.startswith(("bizstream_plugins", "plugins"))}
        assert not plugins, f"{path.relative_to(ROOT)} imports {sorted(plugins)}"


def test_learning_knows_nothing_of_kafka() -> None:
    # A job returns its decisions; the trainer agent (or the CLI) publishes them (issue 15).
    for path in (ROOT / "bizstream" / "learning").rglob("*.py"):
        kafka = {m for m in _imports(path) if m.startswith(("bizstream.stream", "aiokafka", "faust"))}
        assert not kafka, f"{path.relative_to(ROOT)} imports {sorted(kafka)}"
