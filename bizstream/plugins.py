"""Builds the plugin manager: built-in plugins from DEFAULT_PLUGINS, third-party ones from the entry-point group.

Nothing is loaded at import time. A plugin whose hook raises, or an analyzer whose ``load()`` fails, is reported as
unavailable with the reason and skipped; the rest run.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import pluggy

from bizstream import hookspecs
from bizstream.analyzer import Analyzer
from bizstream.errors import AnalyzerUnavailable, ConfigError
from bizstream.settings import Settings

log = logging.getLogger(__name__)

PROJECT_NAME = "bizstream"
ENTRY_POINT_GROUP = "bizstream"
DEFAULT_PLUGINS: tuple[str, ...] = ("plugins.vader", "plugins.setfit", "plugins.cryptobert")


@dataclass(frozen=True)
class AnalyzerStatus:
    """One analyzer as the host found it at start-up: usable, or not and why."""

    name: str
    plugin: str
    version: str
    analyzer: Analyzer | None
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
    statuses: list[AnalyzerStatus] = []
    seen: dict[str, str] = {}
    # Call each implementation on its own: a pluggy hook call stops at the first exception, and isolation is ours.
    for impl in reversed(pm.hook.register_analyzers.get_hookimpls()):
        plugin = impl.plugin_name
        try:
            kwargs = {"settings": settings}
            analyzers = cast(Sequence[Analyzer], impl.function(**{k: kwargs[k] for k in impl.argnames}) or [])
        except Exception as exc:  # boundary: a broken plugin costs only itself
            log.exception("plugin %s failed in register_analyzers", plugin)
            statuses.append(AnalyzerStatus(f"<{plugin}>", plugin, "-", None, f"register_analyzers raised {_describe(exc)}"))
            continue
        for analyzer in analyzers:
            statuses.append(_load_one(analyzer, plugin, seen))
    for status in statuses:
        if not status.available:
            log.warning("analyzer %s (plugin %s) is unavailable: %s", status.name, status.plugin, status.reason)
    return statuses


def _load_one(analyzer: Analyzer, plugin: str, seen: dict[str, str]) -> AnalyzerStatus:
    name = getattr(analyzer, "name", None)
    version = str(getattr(analyzer, "version", "-"))
    if not isinstance(analyzer, Analyzer) or not isinstance(name, str) or not name:
        return AnalyzerStatus(repr(name), plugin, version, None, "does not implement the Analyzer protocol (name, version, load, analyze)")
    if name in seen:
        return AnalyzerStatus(name, plugin, version, None, f"name {name!r} is already used by plugin {seen[name]!r}")
    seen[name] = plugin
    try:
        analyzer.load()
    except AnalyzerUnavailable as exc:
        return AnalyzerStatus(name, plugin, version, None, str(exc))
    except Exception as exc:  # boundary: report, skip, go on
        log.exception("analyzer %s failed to load", name)
        return AnalyzerStatus(name, plugin, version, None, f"load() raised {_describe(exc)}")
    return AnalyzerStatus(name, plugin, str(analyzer.version), analyzer)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
