from __future__ import annotations

import importlib.metadata
import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest

from bizstream import hookspecs
from bizstream.errors import ConfigError
from bizstream.hookspecs import hookimpl
from bizstream.plugins import get_plugin_manager, load_analyzers
from bizstream.settings import Settings
from tests.conftest import ROOT, child_env
from tests.fixtures.analyzers import ConstantAnalyzer, UnavailableAnalyzer


@pytest.fixture
def pm(settings: Settings) -> Iterator[pluggy.PluginManager]:
    yield get_plugin_manager(settings, third_party=False)


def test_builtin_vader_is_registered_and_available(pm: pluggy.PluginManager, settings: Settings) -> None:
    statuses = {s.name: s for s in load_analyzers(pm, settings)}
    assert statuses["vader"].available and statuses["vader"].plugin == "vader"


def test_throwaway_plugin_is_used_and_broken_ones_are_reported(pm: pluggy.PluginManager, settings: Settings) -> None:
    class Good:
        @hookimpl
        def register_analyzers(self) -> list[ConstantAnalyzer]:  # fewer arguments than the spec: allowed
            return [ConstantAnalyzer("good", 0.5), UnavailableAnalyzer("nogpu", 0), ConstantAnalyzer("vader", 0)]

    class Broken:
        @hookimpl
        def register_analyzers(self, settings: Settings) -> list[ConstantAnalyzer]:
            raise ImportError("no module named 'cuda_magic'")

    pm.register(Good(), name="good-plugin")
    pm.register(Broken(), name="broken-plugin")
    try:
        statuses = load_analyzers(pm, settings)
    finally:
        pm.unregister(name="good-plugin")
        pm.unregister(name="broken-plugin")
    by_name = {s.name: s for s in statuses if s.name != "vader"}
    assert by_name["good"].available
    assert by_name["nogpu"].reason == "needs weights at /nowhere, which do not exist"
    assert "register_analyzers raised ImportError" in (by_name["<broken-plugin>"].reason or "")
    # Built-ins run last (trylast), so a plugin's own "vader" takes the name and the built-in is the duplicate.
    vaders = [(s.plugin, s.available, s.reason) for s in statuses if s.name == "vader"]
    assert vaders == [("good-plugin", True, None), ("vader", False, "name 'vader' is already used by plugin 'good-plugin'")]


def test_duplicate_analyzer_names_are_refused(pm: pluggy.PluginManager, settings: Settings) -> None:
    class Twice:
        @hookimpl
        def register_analyzers(self) -> list[ConstantAnalyzer]:
            return [ConstantAnalyzer("vader", 0.1)]

    pm.register(Twice(), name="twice")
    statuses = load_analyzers(pm, settings)
    refused = [(s.plugin, s.reason) for s in statuses if s.name == "vader" and not s.available]
    assert refused == [("vader", "name 'vader' is already used by plugin 'twice'")]


def test_disabled_plugins_are_not_loaded(settings: Settings) -> None:
    pm = get_plugin_manager(settings.replace(plugins={"disabled": ["vader"]}), third_party=False)
    assert pm.get_plugin("vader") is None


def test_plugins_load_setting_registers_modules_and_reports_bad_names(settings: Settings) -> None:
    pm = get_plugin_manager(settings.replace(plugins={"load": ["tests.fixtures.analyzers"]}), third_party=False)
    names = [s.name for s in load_analyzers(pm, settings)]
    assert {"raiser", "hanger", "vader"} <= set(names)
    with pytest.raises(ConfigError, match="plugins.load names 'no_such_module', which cannot be imported"):
        get_plugin_manager(settings.replace(plugins={"load": ["no_such_module"]}), third_party=False)


def test_a_module_loaded_twice_is_one_plugin_and_a_name_clash_is_one_line(settings: Settings) -> None:
    # Installed with an entry point and also named in plugins.load (or named twice): registered once, not a traceback.
    twice = settings.replace(plugins={"load": ["tests.fixtures.analyzers", "tests.fixtures.analyzers"]})
    names = [s.name for s in load_analyzers(get_plugin_manager(twice, third_party=False), settings)]
    assert names.count("raiser") == 1
    # "setfit" imports the setfit library, whose name the built-in plugin already has.
    with pytest.raises(ConfigError, match="plugins.load names 'setfit', but a plugin of that name is already registered"):
        get_plugin_manager(settings.replace(plugins={"load": ["setfit"]}), third_party=False)


def test_misspelled_hook_implementation_fails_at_startup(pm: pluggy.PluginManager) -> None:
    class Typo:
        @hookimpl
        def register_analyser(self) -> list[ConstantAnalyzer]:
            return []

    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_every_hook_is_documented_under_its_full_signature() -> None:
    """The datasette way: a section per hook, headed by the signature in hookspecs.py, with an example."""
    doc = (ROOT / "docs" / "hooks.md").read_text()
    headings = set(re.findall(r"^## (\w+\(.*)$", doc, flags=re.M))
    specs = {name: getattr(hookspecs, name) for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "bizstream_spec")}
    expected = {f"{name}{inspect.signature(spec)}".replace("'", "") for name, spec in specs.items()}
    assert headings == expected
    for name in specs:
        section = doc.split(f"## {name}(", 1)[1].split("\n## ", 1)[0]
        assert f"def {name}(" in section, f"the {name} section has no example"


def test_a_config_error_in_a_hook_stops_start_up(settings: Settings) -> None:
    class Misconfigured:
        @hookimpl
        def register_analyzers(self) -> list[ConstantAnalyzer]:
            raise ConfigError("[plugins.options.mine] threshold must be in [0, 1], got 7")

    pm = get_plugin_manager(settings, third_party=False)
    pm.register(Misconfigured(), name="mine")
    with pytest.raises(ConfigError, match=r"plugin mine: \[plugins.options.mine\] threshold must be in \[0, 1\], got 7"):
        load_analyzers(pm, settings)


def test_a_bad_builtin_option_stops_start_up_naming_the_key(settings: Settings) -> None:
    bad = settings.replace(plugins={"options": {"vader": {"sharpnes": 2.0}}})
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['sharpnes'\] in \[plugins.options.vader\]"):
        load_analyzers(get_plugin_manager(bad, third_party=False), bad)
    worse = settings.replace(plugins={"options": {"vader": {"neutral_band": 3.0}}})
    with pytest.raises(ConfigError, match="neutral_band must be in"):
        load_analyzers(get_plugin_manager(worse, third_party=False), worse)


def test_builtins_are_found_through_entry_points_under_a_bizstream_owned_name(settings: Settings) -> None:
    pm = get_plugin_manager(settings, third_party=False)
    modules = {name: getattr(plugin, "__name__", "") for name, plugin in pm.list_name_plugin()}
    assert modules == {name: f"bizstream_plugins.{name}" for name in ("vader", "setfit", "cryptobert", "llava", "sarcasm", "ocr", "clip")}
    # What the installed distribution puts on the import path: nothing named plainly "plugins".
    top_level = (importlib.metadata.distribution("bizstream").read_text("top_level.txt") or "").split()
    assert sorted(top_level) == ["bizstream", "bizstream_plugins"]


def test_serving_the_defaults_imports_neither_torch_nor_transformers(tmp_path: Path) -> None:
    # Issue 13, item 8: a worker serving VADER + the INT8 starter held 1.2 GB, most of it torch, imported by CryptoBERT's
    # and LLaVA's availability checks and by the starter's ONNX export; then pytesseract's optional pandas import
    # (~80 MiB) came with OCR. bench/memory.py has the figures. A meme is read here too, so the OCR path is covered.
    code = ("import sys; from bizstream.plugins import load_pipeline; from bizstream.settings import load_settings; "
            "from bizstream.records import Post; from bizstream.settings import LimitSettings; "
            "p = load_pipeline(load_settings(None), report=lambda s: None); "
            "meme = next(line for line in open('data/sample_posts.jsonl', 'rb') if b'\"image\"' in line); "
            "assert p.process([Post.from_json(meme, LimitSettings())]).scores[0].analyzers['ocr'].error is None; "
            "print(sorted(a.name for a in p.analyzers), [m for m in ('torch', 'transformers', 'pandas') if m in sys.modules])")  # fmt: skip
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['ocr', 'setfit', 'vader'] []"  # the starter installed and served, no torch
    assert any((tmp_path / "cache").rglob("model.int8.onnx"))  # exported (in a child process) for INT8 serving


@pytest.mark.parametrize(("route", "loaded", "skipped"), [
    ("auto", {"ocr"}, set()),  # no CUDA here: LLaVA is unavailable on its own, so the CPU stack loads
    ("clip", {"ocr"}, {"llava"}),
    ("llava", set(), {"clip", "ocr"}),
])  # fmt: skip
def test_images_take_the_route_the_settings_name(route: str, loaded: set[str], skipped: set[str], settings: Settings) -> None:
    from bizstream.plugins import describe_image_path

    settings = settings.replace(images={"analyzer": route})
    statuses = {s.name: s for s in load_analyzers(get_plugin_manager(settings, third_party=False), settings)}
    assert {n for n in ("llava", "clip", "ocr") if statuses[n].available} == loaded
    assert {n for n in ("llava", "clip", "ocr") if str(statuses[n].reason).startswith(f'images.analyzer = "{route}"')} == skipped
    line = describe_image_path(settings, list(statuses.values()))
    if loaded:
        assert line.startswith("images go to ocr") and "clip" in line  # CLIP has no weights here, and it says so
    else:
        assert line.startswith("images are not read") and "llava" in line
    with pytest.raises(ConfigError, match="images.analyzer"):
        settings.replace(images={"analyzer": "gpu"})


def test_auto_sends_images_to_llava_when_it_loads() -> None:
    from bizstream.plugins import AnalyzerStatus, ImageRoute

    route = ImageRoute("auto")
    assert route.first("llava") and not route.first("clip")
    route.loaded(AnalyzerStatus("llava", "llava", "v", analyzer=object()))  # loaded, as on a GPU with its weights
    assert route.skip("clip") == route.skip("ocr") == 'images.analyzer = "auto": LLaVA loaded, so images go to it'
    assert route.skip("vader") is None
