"""The root ``bizstream`` command and what every command module shares: the consoles, the common options, the
settings loader, and the entry point that turns bizstream's own errors into one line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from bizstream.errors import BizstreamError
from bizstream.settings import Settings, load_settings

if TYPE_CHECKING:
    import faust

def _flags_take_no_value() -> None:
    """typer 0.29 prints ``<bool>`` beside every flag in --help, as if it took a value; a flag shows no type."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()
app = typer.Typer(
    help="Live sentiment for crypto/finance posts on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
err = Console(stderr=True, soft_wrap=True)
# Piped, a table is as wide as it needs (up to 200 columns) instead of squeezed into 80, and no line is broken mid-path.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Settings file (default: $BIZSTREAM_CONFIG or config/settings.toml).", envvar=None),
]
LogLevelOption = Annotated[str, typer.Option(help="debug, info, warning or error.")]


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"bizstream {version('bizstream')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Live sentiment for crypto/finance posts on Apache Kafka."""


def load(config: Path | None) -> Settings:
    """The settings a command runs with (validated; ConfigError says what is wrong)."""
    return load_settings(config)


def readable(file: Path) -> Path:
    """``file`` when it can be read ('-': stdin), else BizstreamError at once — before any plugin loads."""
    if str(file) != "-" and not file.is_file():
        raise BizstreamError(f"no such file: {file}" if not file.exists() else f"not a file: {file}")
    return file


def run_faust(faust_app: faust.App, log_level: str, settings: Settings) -> None:
    """Run a faust app in the foreground until SIGTERM / Ctrl-C (faust's Worker exits the process), once its broker
    accepts connections (waiting up to kafka.connect_timeout_s; BrokerError after that)."""
    import faust

    prepare_agent(settings)
    # faust, mode and aiokafka say a screenful at info on every start (services starting, subscription tables):
    # bizstream's own lines are the news at info; theirs show at debug.
    quiet = {"merge": True, "loggers": {name: {"level": "WARNING"} for name in CHATTY}} if log_level != "debug" else None
    faust.Worker(faust_app, loglevel=log_level.upper(), quiet=True, logging_config=quiet).execute_from_commandline()


def prepare_agent(settings: Settings) -> None:
    """Before an agent starts: its broker accepts connections (BrokerError after kafka.connect_timeout_s) and has
    every bizstream topic (an agent newer than the broker's topics, e.g. tickers, finds them)."""
    import asyncio

    from bizstream.stream.client import ensure_topics, wait_for_broker

    asyncio.run(wait_for_broker(settings.kafka, say=lambda line: err.print(escape(line))))
    asyncio.run(ensure_topics(settings.kafka))


def agent_logging(log_level: str) -> None:
    """An agent that is not a faust app logs as the faust ones do (same line format; the libraries quiet unless
    debug)."""
    logging.basicConfig(level=log_level.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s", force=True)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if log_level == "debug" else logging.WARNING)


CHATTY = ("faust", "mode", "aiokafka")


def main() -> None:
    """Entry point: run the CLI, turning bizstream's own errors into one clear line and exit code 1."""
    import bizstream.cli  # noqa: F401  (registers every command module on ``app``)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    code: int | str | None = 0
    try:
        app()
    except BizstreamError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")  # a message is text: "[section]" must not vanish as markup
        code = 1
    except SystemExit as exc:
        code = exc.code
    _exit(code)


def _exit(code: int | str | None) -> None:
    """Exit with ``code``; when an analyzer is still inside a batch (an overrun, or Ctrl-C mid-batch), give it
    EXIT_GRACE_S and then end the process without finalizing the interpreter under it, which would abort it."""
    pipeline = sys.modules.get("bizstream.pipeline")  # no analyzer ran unless a pipeline was imported
    busy: list[str] = pipeline.wait_idle(EXIT_GRACE_S) if pipeline is not None else []
    if not busy:
        sys.exit(code)
    err.print(f"[yellow]{', '.join(busy)} still busy with a batch after {EXIT_GRACE_S:.0f} s; exiting without it[/]")
    if isinstance(code, str):
        err.print(code)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code if isinstance(code, int) else (1 if code else 0))


EXIT_GRACE_S = 2.0
