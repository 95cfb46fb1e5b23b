"""``bizstream plugins``: every plugin, analyzer and fuser, whether it is available, and why not."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from bizstream.cli.app import ConfigOption, app, load, out


@app.command()
def plugins(config: ConfigOption = None) -> None:
    """List every plugin, analyzer and fuser, whether it is available, and why not."""
    from bizstream.plugins import get_plugin_manager, load_analyzers, load_fusers

    settings = load(config)
    pm = get_plugin_manager(settings)
    table = Table("plugin", "module")
    for name, plugin in pm.list_name_plugin():
        table.add_row(name, getattr(plugin, "__name__", repr(plugin)))
    out.print(table)
    table = Table("analyzer", "plugin", "version", "available", "why not")
    for column in table.columns[:4]:
        column.no_wrap = True  # names and versions stay whole (scripts grep them); the reason wraps
    analyzers = load_analyzers(pm, settings)
    for status in analyzers:
        table.add_row(status.name, status.plugin, status.version, "yes" if status.available else "no", escape(status.reason or ""))
    for status in load_fusers(pm, settings, {s.name: s.analyzer for s in analyzers if s.available}):
        table.add_row(f"{status.name} (fuser)", status.plugin, status.version, "yes" if status.available else "no", escape(status.reason or ""))
    out.print(table)
    if settings.plugins.disabled:
        out.print(f"disabled in settings: {', '.join(settings.plugins.disabled)}")
