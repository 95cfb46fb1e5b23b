"""Builds the plugin manager: built-in plugins from DEFAULT_PLUGINS, third-party ones from the entry-point group.

Nothing is loaded at import time. A plugin whose hook raises, or an analyzer whose ``load()`` fails, is reported as
unavailable with the reason and skipped; the rest run.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from bizstream import hookspecs
from bizstream.analyzer import Analyzer, Fuser
from bizstream.errors import AnalyzerUnavailable, ConfigError
from bizstream.settings import Settings

log = logging.getLogger(__name__)

PROJECT_NAME = "bizstream"
ENTRY_POINT_GROUP = "bizstream"
DEFAULT_PLUGINS: tuple[str, ...] = ("plugins.vader", "plugins.setfit", "plugins.cryptobert", "plugins.llava", "plugins.sarcasm")


@dataclass(frozen=True)
class AnalyzerStatus:
    """One analyzer (or fuser) as the host found it at start-up: usable, or not and why."""

    name: str
    plugin: str
    version: str
    analyzer: Any  # the loaded Analyzer (or Fuser), None when unavailable
    reason: str | None = None

    @property
    def available(self) -> bool:
        """True when the analyzer loaded and will run."""
        return self.analyzer is not None


def get_plugin_manager(settings: Settings, entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the hook specs, the built-in plugins and (optionally) the installed third-party ones."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in settings.plugins.disabled:
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        name = module_name.rpartition(".")[2]
        if not pm.is_blocked(name):
            pm.register(importlib.import_module(module_name), name=name)
    for module_name in settings.plugins.load:
        if not pm.is_blocked(module_name):
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise ConfigError(f"plugins.load names {module_name!r}, which cannot be imported: {exc}") from None
            pm.register(module, name=module_name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def load_analyzers(pm: pluggy.PluginManager, settings: Settings) -> list[AnalyzerStatus]:
    """Ask every plugin for its analyzers and load each one; failures are reported, never raised."""
    return _load_all(pm.hook.register_analyzers, settings, Analyzer, "analyze")


def load_fusers(pm: pluggy.PluginManager, settings: Settings) -> list[AnalyzerStatus]:
    """Ask every plugin for its fusers and load each one; failures are reported, never raised."""
    return _load_all(pm.hook.register_fusers, settings, Fuser, "refine")


def _load_all(hook: Any, settings: Settings, protocol: type, method: str) -> list[AnalyzerStatus]:
    statuses: list[AnalyzerStatus] = []
    seen: dict[str, str] = {}
    # Call each implementation on its own: a pluggy hook call stops at the first exception, and isolation is ours.
    for impl in reversed(hook.get_hookimpls()):
        plugin = impl.plugin_name
        try:
            kwargs = {"settings": settings}
            contributed: Sequence[Any] = impl.function(**{k: kwargs[k] for k in impl.argnames}) or []
        except Exception as exc:  # boundary: a broken plugin costs only itself
            log.exception("plugin %s failed in %s", plugin, hook.name)
            statuses.append(AnalyzerStatus(f"<{plugin}>", plugin, "-", None, f"{hook.name} raised {_describe(exc)}"))
            continue
        for item in contributed:
            statuses.append(_load_one(item, plugin, seen, protocol, method))
    for status in statuses:
        if not status.available:
            log.warning("%s (plugin %s) is unavailable: %s", status.name, status.plugin, status.reason)
    return statuses


def _load_one(item: Any, plugin: str, seen: dict[str, str], protocol: type, method: str) -> AnalyzerStatus:
    loaded: Any = item  # an Analyzer or a Fuser once the isinstance check below has passed
    name = getattr(item, "name", None)
    version = str(getattr(item, "version", "-"))
    if not isinstance(item, protocol) or not isinstance(name, str) or not name:
        return AnalyzerStatus(repr(name), plugin, version, None, f"does not implement the {protocol.__name__} protocol (name, version, load, {method})")
    if name in seen:
        return AnalyzerStatus(name, plugin, version, None, f"name {name!r} is already used by plugin {seen[name]!r}")
    seen[name] = plugin
    try:
        loaded.load()
    except AnalyzerUnavailable as exc:
        return AnalyzerStatus(name, plugin, version, None, str(exc))
    except Exception as exc:  # boundary: report, skip, go on
        log.exception("%s failed to load", name)
        return AnalyzerStatus(name, plugin, version, None, f"load() raised {_describe(exc)}")
    return AnalyzerStatus(name, plugin, str(loaded.version), loaded)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
