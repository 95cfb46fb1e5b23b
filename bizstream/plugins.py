"""Builds the plugin manager and loads what plugins contribute.

Every plugin, built-in or not, is found through the entry-point group ``bizstream`` (the built-ins are bizstream's own
entry points, under the import name ``bizstream_plugins``); modules named in ``plugins.load`` are added to them, and
``plugins.disabled`` blocks any by name. Nothing is loaded at import time.

Loading is isolated per plugin and per analyzer: a hook that raises, or an analyzer whose ``load()`` fails, is
reported as unavailable with the reason and skipped, and the rest run — except a :class:`ConfigError`, which means
the settings are wrong and stops start-up with its message (bad configuration never waits for the first message).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from bizstream import hookspecs
from bizstream.analyzer import Analyzer, Fuser
from bizstream.errors import AnalyzerUnavailable, BizstreamError, ConfigError
from bizstream.learning.fusion import ServedFusion, fusion_registry
from bizstream.pipeline import Pipeline
from bizstream.settings import Settings
from bizstream.tickers import Lexicon, TickerExtractor

log = logging.getLogger(__name__)

PROJECT_NAME = "bizstream"
ENTRY_POINT_GROUP = "bizstream"
BUILTIN_DISTRIBUTION = "bizstream"  # the distribution whose entry points are the built-in plugins


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


def get_plugin_manager(settings: Settings, third_party: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the hook specs and every plugin of the entry-point group (only bizstream's own when
    ``third_party`` is False), plus the modules in ``plugins.load``."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in settings.plugins.disabled:
        pm.set_blocked(name)
    found_builtins = False
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        builtin = ep.dist is not None and ep.dist.name == BUILTIN_DISTRIBUTION
        found_builtins |= builtin
        if (builtin or third_party) and not pm.is_blocked(ep.name) and pm.get_plugin(ep.name) is None:
            pm.register(ep.load(), name=ep.name)
    if not found_builtins:
        raise ConfigError(
            "bizstream's built-in plugins are not registered: its package metadata is missing or stale; "
            "install it (scripts/install.sh, or pip install -e .)"
        )
    for module_name in settings.plugins.load:
        if not pm.is_blocked(module_name):
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise ConfigError(f"plugins.load names {module_name!r}, which cannot be imported: {exc}") from None
            if pm.is_registered(module):
                continue  # also installed with an entry point: one plugin, registered once
            if pm.has_plugin(module_name):
                raise ConfigError(f"plugins.load names {module_name!r}, but a plugin of that name is already registered")
            pm.register(module, name=module_name)
    pm.check_pending()
    return pm


def load_analyzers(pm: pluggy.PluginManager, settings: Settings) -> list[AnalyzerStatus]:
    """Ask every plugin for its analyzers and load each one; failures are reported (ConfigError is raised). Images
    are routed by ``images.analyzer`` (see :class:`ImageRoute`): the analyzers of the path not taken are reported as
    not loaded, with why."""
    return _load_all(pm.hook.register_analyzers, {"settings": settings}, Analyzer, "analyze", ImageRoute(settings.images.analyzer))


class ImageRoute:
    """Which analyzers read images: LLaVA (``"llava"``), CLIP + OCR on the CPU (``"clip"``), or ``"auto"``: LLaVA
    when it loads, else CLIP + OCR. LLaVA is loaded first, so that "auto" knows before the CPU stack would load."""

    LLAVA = ("llava",)
    CPU = ("clip", "ocr")

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self.llava: AnalyzerStatus | None = None

    def first(self, name: str) -> bool:
        return name in self.LLAVA

    def skip(self, name: str) -> str | None:
        """Why an analyzer is not loaded on this route, or None to load it."""
        why = f'images.analyzer = "{self.setting}"'
        if self.setting == "llava" and name in self.CPU:
            return f"{why}: images go to LLaVA; set it to \"clip\" or \"auto\" for CLIP + OCR"
        if self.setting == "clip" and name in self.LLAVA:
            return f"{why}: images go to CLIP + OCR; set it to \"llava\" or \"auto\" for LLaVA"
        if self.setting == "auto" and name in self.CPU and self.llava is not None and self.llava.available:
            return f"{why}: LLaVA loaded, so images go to it"
        return None

    def loaded(self, status: AnalyzerStatus) -> None:
        if status.name in self.LLAVA:
            self.llava = status


def describe_image_path(settings: Settings, statuses: Sequence[AnalyzerStatus]) -> str:
    """One sentence for people (``bizstream plugins``): which analyzers read images, and why."""
    by_name = {s.name: s for s in statuses}
    names = [n for n in (*ImageRoute.LLAVA, *ImageRoute.CPU) if n in by_name]
    reading = [n for n in names if by_name[n].available]
    # Unavailable for a reason of their own (the route's choice is not a failure): their reasons are listed above.
    failed = [n for n in names if not by_name[n].available and not str(by_name[n].reason).startswith("images.analyzer")]
    setting = f'images.analyzer = "{settings.images.analyzer}"'
    why = f"; unavailable: {', '.join(failed)} (see above)" if failed else ""
    if not reading:
        return f"images are not read ({setting}{why or '; no image analyzer is installed'})"
    return f"images go to {' + '.join(reading)} ({setting}{why})"


def load_fusers(
    pm: pluggy.PluginManager, settings: Settings, analyzers: Mapping[str, Analyzer] | None = None
) -> list[AnalyzerStatus]:
    """Ask every plugin for its fusers, handing them the available analyzers, and load each one."""
    kwargs = {"settings": settings, "analyzers": dict(analyzers or {})}
    return _load_all(pm.hook.register_fusers, kwargs, Fuser, "refine")


def load_pipeline(
    settings: Settings, third_party: bool = True, report: Callable[[AnalyzerStatus], None] | None = None
) -> Pipeline:
    """The pipeline the worker and ``bizstream score`` run: every available analyzer and fuser. ``report`` sees each
    unavailable one (default: a warning in the log); BizstreamError when no analyzer at all is available."""
    pm = get_plugin_manager(settings, third_party)
    statuses = load_analyzers(pm, settings)
    analyzers = {s.name: s.analyzer for s in statuses if s.available}
    fusers = load_fusers(pm, settings, analyzers)
    for status in statuses + fusers:
        if not status.available:
            (report or _log_unavailable)(status)
    if not analyzers:
        raise BizstreamError("no analyzer is available; run `bizstream plugins` to see why")
    named = {s.name for s in statuses}
    for typo in sorted(set(settings.fusion.weights) - named):  # a weight for no analyzer at all is most likely a typo
        log.warning("fusion.weights.%s names no analyzer any plugin provides (%s); it has no effect",
                    typo, ", ".join(sorted(named)))  # fmt: skip
    learned = ServedFusion(fusion_registry(settings.fusion_registry)) if settings.fusion.learned else None
    return Pipeline(list(analyzers.values()), settings.fusion, settings.worker.analyzer_timeout_s, settings.routing,
                    fusers=[f.analyzer for f in fusers if f.available], fusion_source=learned,
                    tickers=TickerExtractor(Lexicon.load(settings.tickers.lexicon_path)))  # fmt: skip


def _log_unavailable(status: AnalyzerStatus) -> None:
    log.warning("%s (plugin %s) is unavailable: %s", status.name, status.plugin, status.reason)


def _load_all(hook: Any, kwargs: dict[str, Any], protocol: type, method: str, route: ImageRoute | None = None) -> list[AnalyzerStatus]:
    statuses: list[AnalyzerStatus] = []
    contributed: list[tuple[Any, str]] = []
    # Call each implementation on its own: a pluggy hook call stops at the first exception, and isolation is ours.
    for impl in reversed(hook.get_hookimpls()):
        plugin = impl.plugin_name
        try:
            items: Sequence[Any] = impl.function(**{k: kwargs[k] for k in impl.argnames}) or []
        except ConfigError as exc:  # the settings are wrong: stop here, with the plugin's own message
            raise ConfigError(f"plugin {plugin}: {exc}") from exc
        except Exception as exc:  # boundary: a broken plugin costs only itself
            log.exception("plugin %s failed in %s", plugin, hook.name)
            statuses.append(AnalyzerStatus(f"<{plugin}>", plugin, "-", None, f"{hook.name} raised {_describe(exc)}"))
            continue
        contributed.extend((item, plugin) for item in items)
    seen: dict[str, str] = {}
    order = sorted(range(len(contributed)), key=lambda i: not (route and route.first(str(getattr(contributed[i][0], "name", "")))))
    loaded: dict[int, AnalyzerStatus] = {}
    for i in order:
        item, plugin = contributed[i]
        name = getattr(item, "name", None)
        reason = route.skip(name) if route is not None and isinstance(name, str) else None
        if reason is not None:
            loaded[i] = AnalyzerStatus(name, plugin, str(getattr(item, "version", "-")), None, reason)  # type: ignore[arg-type]
            continue
        loaded[i] = _load_one(item, plugin, seen, protocol, method)
        if route is not None:
            route.loaded(loaded[i])
    return statuses + [loaded[i] for i in range(len(contributed))]


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
    except ConfigError as exc:
        raise ConfigError(f"{name} (plugin {plugin}): {exc}") from exc
    except Exception as exc:  # boundary: report, skip, go on
        log.exception("%s failed to load", name)
        return AnalyzerStatus(name, plugin, version, None, f"load() raised {_describe(exc)}")
    return AnalyzerStatus(name, plugin, str(loaded.version), loaded)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
