"""Training labels: importing and exporting them (``bizstream labels``) and labelling posts from the keyboard
(``bizstream label``)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.markup import escape

from bizstream.cli.app import ConfigOption, app, err, load, out, readable

if TYPE_CHECKING:
    from bizstream.labeler import LabelSession

labels_app = typer.Typer(help="Training labels in the embedded SQLite store.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON lines: a `text` column plus `label` (bearish/neutral/bullish) or `rating` (1..3).")],
    config: ConfigOption = None,
    labeler: Annotated[str, typer.Option(help="Labeler name for rows that do not give one.")] = "import",
) -> None:
    """Import labels; rows with bad values are reported by line number and skipped, the good ones all imported."""
    from bizstream.store.label_files import read_label_file
    from bizstream.store.labels import LabelStore

    readable(file)
    settings = load(config)
    store = LabelStore(settings.store_path)
    report = read_label_file(file, labeler=labeler)
    before = store.count()
    imported = store.add(report.rows)  # one transaction: every good row, or none if anything fails underneath
    for line, message in report.errors:
        err.print(f"{file}:{line}: {message}")
    if (skipped := report.skipped()) is not None:
        out.print(skipped)
    new = store.count() - before
    out.print(f"imported {imported} labels into {settings.store_path}: {new} new, {imported - new} already there "
              f"({len(report.errors)} rows rejected); the store holds {store.count()} labels")  # fmt: skip
    if report.errors:
        raise typer.Exit(2)


@labels_app.command("export")
def labels_export(
    file: Annotated[Path, typer.Argument(help="JSON lines to write (one label per line; '-' for stdout), e.g. to train on a GPU box.", allow_dash=True)],
    config: ConfigOption = None,
) -> None:
    """Write every training label as JSON lines (post_id, thread_id, text, rating, labeler, source, labeled_at)."""
    from dataclasses import asdict

    from bizstream.store.labels import LabelStore

    rows = LabelStore(load(config).store_path).rows()
    with contextlib.nullcontext(sys.stdout.buffer) if str(file) == "-" else file.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps({k: v for k, v in asdict(row).items() if k != "arrival"}) + b"\n")  # arrival: this store's
    err.print(f"wrote {len(rows)} labels to {'stdout' if str(file) == '-' else file}")


@app.command()
def label(
    config: ConfigOption = None,
    active_learning: Annotated[bool, typer.Option("--active-learning/--newest", help="The posts worth labelling first (what the serving model is least sure of, spread over what is said), or the newest first.")] = True,
    limit: Annotated[int, typer.Option(help="Posts in this session.")] = 50,
    labeler: Annotated[str, typer.Option(help="Your name, recorded with each label.", envvar="USER")] = "labeler",
) -> None:
    """Label posts from the keyboard: 1 bearish, 2 neutral, 3 bullish, s skip, u undo, q quit. Keys can come from stdin."""
    from bizstream.labeler import LabelSession
    from bizstream.store.labels import LabelStore
    from bizstream.store.scored import ScoredPostStore

    settings = load(config)
    store = ScoredPostStore(LabelStore(settings.store_path))
    if active_learning:
        from bizstream.errors import BrokerError
        from bizstream.learning.suggest import LEARNER, suggest
        from bizstream.stream import topics
        from bizstream.stream.models import catch_up

        queue = []
        with err.status(f"bringing the serving models up to date from {topics.MODELS}"):
            try:  # the trainer may be on another machine: what serves there is what should choose the posts
                for analyzer, version in catch_up(settings).items():
                    err.print(f"[bold]>[/] {analyzer}: {version} serves here now, as {topics.MODELS} announced")
            except BrokerError as exc:
                err.print(f"[yellow]models not brought up to date:[/] {escape(str(exc))}; this machine's serving versions choose")
        with err.status("choosing the posts worth labelling: asking the serving model about them"):
            suggestions = suggest(settings, labeler, limit)
        for suggestion in suggestions:
            post = store.get(suggestion.post_id)
            if post is not None:
                belief = suggestion.belief()
                queue.append(post if belief is None else replace(post, opinions=post.opinions | {f"{LEARNER} now": belief}))
    else:
        queue = store.unlabelled(labeler, limit)
    session = LabelSession(settings, labeler, queue)
    session.flush(force=True)  # labels a broker outage kept from an earlier session
    if session.current is None:
        total, labelled, skipped = store.tally(labeler)
        if total == 0:
            out.print("nothing to label: no scored posts with text are stored yet; run `bizstream sink` beside the worker "
                      "(it keeps what the worker scores for the labeler)")  # fmt: skip
        else:
            out.print(f"nothing to label: all {total} scored posts with text are labelled ({labelled}) or skipped by {labeler} "
                      f"({skipped}); new ones appear here as the worker scores them")  # fmt: skip
        return
    keys = _keys()
    redraw = sys.stdout.isatty()  # on a terminal each post replaces the last; piped, the session reads top to bottom
    said = ""
    try:
        while session.current is not None:
            _show(session, said, redraw)
            key = next(keys, "q")
            said = session.press(key)
            if key == "q":
                break
            if not redraw:
                out.print(f"> {said}", markup=False, highlight=False)
    except KeyboardInterrupt:
        out.print("\ninterrupted")
    finally:
        session.flush(force=True)
        if redraw and said and said != "quit":
            out.print(f"> {said}", markup=False, highlight=False)
        out.print(session.progress() + " · " + session.sent_line())


def _show(session: LabelSession, said: str, redraw: bool) -> None:
    """The post on screen: its thread context, text, image, what the model and each analyzer said, the keys."""
    from bizstream.labeler import KEYS

    post = session.current
    assert post is not None
    if redraw:
        out.clear()
        if said:
            out.print(f"[green]>[/] {escape(said)}", highlight=False)
    out.rule(f"post {escape(post.post_id)}" + (f" · thread {escape(post.thread_id)}" if post.thread_id else ""))
    parent = session.parent(post)
    if parent is not None:
        out.print(f"[dim]in reply to {escape(parent.post_id)}: {escape(parent.text[:200])}[/]")
    out.print(post.text, markup=False, highlight=False)
    if post.image:
        out.print(f"[dim]image: {escape(post.image)}[/]")
    if post.label:
        out.print(f"model: [bold]{post.label}[/] ({(post.confidence or 0):.0%})")
    for name, opinion in post.opinions.items():
        out.print(f"  [dim]{escape(name)}:[/] {escape(opinion)}", highlight=False)
    out.print(f"[dim]{session.progress()}[/]")
    out.print(KEYS)


def _keys() -> Iterator[str]:
    """Single keypresses from a terminal, or the non-blank characters of stdin when it is not one (scripts, tests)."""
    if sys.stdin.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while True:
                char = sys.stdin.read(1)
                if char == "\x03":
                    raise KeyboardInterrupt
                yield char
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
    for line in sys.stdin:
        yield from (c for c in line if not c.isspace())
