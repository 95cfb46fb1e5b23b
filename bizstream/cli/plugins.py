"""``bizstream plugins``: every plugin, analyzer and fuser, whether it is available, and why not."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from bizstream.cli.app import ConfigOption, app, load, out


@app.command()
def plugins(config: ConfigOption = None) -> None:
    """List every plugin, analyzer and fuser, whether it is available, and why not."""
    from bizstream.plugins import describe_image_path, get_plugin_manager, load_analyzers, load_fusers

    settings = load(config)
    pm = get_plugin_manager(settings)
    table = Table("plugin", "module")
    for name, plugin in pm.list_name_plugin():
        table.add_row(name, getattr(plugin, "__name__", repr(plugin)))
    out.print(table)
    table = Table("analyzer", "plugin", "version", "available")
    for column in table.columns:
        column.no_wrap = True  # names and versions stay whole (scripts grep them)
    analyzers = load_analyzers(pm, settings)
    fusers = load_fusers(pm, settings, {s.name: s.analyzer for s in analyzers if s.available})
    rows = [(s.name, s) for s in analyzers] + [(f"{s.name} (fuser)", s) for s in fusers]
    for name, status in rows:
        table.add_row(name, status.plugin, status.version, "yes" if status.available else "no (below)")
    out.print(table)
    for name, status in rows:  # a reason is a sentence: it gets the whole width, not a squeezed column
        if not status.available:
            out.print(f"[bold]{escape(name)}[/] is unavailable: {escape(status.reason or '')}", soft_wrap=False, highlight=False)
    out.print(escape(describe_image_path(settings, analyzers)), soft_wrap=False, highlight=False)
    if settings.plugins.disabled:
        out.print(f"disabled in settings: {', '.join(settings.plugins.disabled)}")
