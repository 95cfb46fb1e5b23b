from __future__ import annotations

import re
from collections.abc import Iterator

import pluggy
import pytest

from bizstream import hookspecs
from bizstream.errors import ConfigError
from bizstream.hookspecs import hookimpl
from bizstream.plugins import get_plugin_manager, load_analyzers
from bizstream.settings import Settings
from tests.conftest import ROOT
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


def test_misspelled_hook_implementation_fails_at_startup(pm: pluggy.PluginManager) -> None:
    class Typo:
        @hookimpl
        def register_analyser(self) -> list[ConstantAnalyzer]:
            return []

    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_every_hook_is_documented() -> None:
    doc = (ROOT / "docs" / "hooks.md").read_text()
    documented = set(re.findall(r"^## (\w+)\(", doc, flags=re.M))
    specs = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "bizstream_spec")}
    assert specs == documented
