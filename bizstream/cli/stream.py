"""The long-running processes on Kafka (worker, monitor, trainer, sink), moving posts on and off topics (produce,
consume), scoring a file offline (score) and the end-to-end demo."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from bizstream.analyzer import has_opinion
from bizstream.cli.app import ConfigOption, LogLevelOption, agent_logging, app, err, load, out, prepare_agent, readable, run_faust
from bizstream.errors import BizstreamError
from bizstream.files import post_lines
from bizstream.settings import Settings

if TYPE_CHECKING:
    from bizstream.pipeline import Pipeline
    from bizstream.records import AnalyzerResult, Score
    from bizstream.scoring import Message


@app.command()
def worker(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Consume posts, score them with every available analyzer, produce Scores (and dead letters). Ctrl-C stops."""
    from bizstream.stream.worker import run_worker

    settings = load(config)
    prepare_agent(settings)
    agent_logging(log_level)
    run_worker(settings, lambda: _pipeline(settings))
    # Every client is closed and every batch settled: skip the interpreter's teardown, where native libraries that
    # torch loads (triton's nanobind) print a screenful of "leaked" reports.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command()
def monitor(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Join labels to earlier scores, watch each analyzer's error with ADWIN, publish drift events. One per cluster."""
    from bizstream.stream.monitor import create_monitor_app

    settings = load(config)
    run_faust(create_monitor_app(settings), log_level, settings)


@app.command()
def trainer(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Store labels from the labels topic and retrain (in a separate process) on enough new labels or on drift."""
    from bizstream.stream.trainer import create_trainer_app

    settings = load(config)
    run_faust(create_trainer_app(settings), log_level, settings)


@app.command()
def sink(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Write every scored post (text, image reference, thread, Score) to SQLite, for the labeler and dashboards."""
    from bizstream.stream.sink import create_sink_app

    settings = load(config)
    run_faust(create_sink_app(settings), log_level, settings)


@app.command()
def tickers(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Per-ticker sentiment windows from the scores (counts, means, shares, sarcasm, extremes, volume spikes), kept
    in a changelogged table and published to bizstream.tickers.v1 keyed by ticker."""
    from bizstream.stream.windows import create_tickers_app

    settings = load(config)
    run_faust(create_tickers_app(settings), log_level, settings)


@app.command()
def dashboard(
    config: ConfigOption = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default: dashboard.port; 0: any free one).")] = None,
) -> None:
    """Serve the live dashboard and its JSON API (read-only, on dashboard.host, 127.0.0.1 by default): tickers,
    sentiment and volume over time, the latest posts, drift events, model decisions, throughput and lag."""
    from bizstream.dashboard.server import serve
    from bizstream.stream.client import wait_for_broker

    settings = load(config)
    asyncio.run(wait_for_broker(settings.kafka, say=lambda line: err.print(escape(line))))
    try:
        asyncio.run(serve(settings, settings.dashboard.port if port is None else port, say=lambda line: err.print(escape(line))))
    except KeyboardInterrupt:
        pass


@app.command()
def produce(
    file: Annotated[Path, typer.Argument(help="JSON lines, one message per line ('-' for stdin), or posts as CSV (a `text` column).", allow_dash=True)],
    config: ConfigOption = None,
    topic: Annotated[str, typer.Option(help="Topic or alias (posts, labels, …).")] = "posts",
) -> None:
    """Publish JSON lines as they are (the agents validate), or a posts CSV's rows as JSON objects: posts keyed by
    thread id, labels by post id, as those topics are keyed, so a label and its retraction stay in order."""
    from bizstream.stream import topics
    from bizstream.stream.client import ensure_topic, publish

    name = topics.resolve(topic)
    if name != topics.POSTS and file.suffix.lower() == ".csv":
        raise BizstreamError(f"{file}: only posts are read from CSV; give {name} as JSON lines (a label CSV goes into the "
                             "local store with `bizstream labels import`)")  # fmt: skip
    settings = load(config)
    records = [(_key(line, name), line) for line in post_lines(readable(file))]
    asyncio.run(ensure_topic(settings.kafka, name))
    sent = asyncio.run(publish(settings.kafka, name, records))
    err.print(f"published {sent} messages to {name}")


@app.command()
def consume(
    topic: Annotated[str, typer.Argument(help="Topic or alias: posts, scores, deadletter, labels, drift, models, tickers.")],
    config: ConfigOption = None,
    count: Annotated[Optional[int], typer.Option(help="Stop after this many messages.")] = None,
    idle: Annotated[float, typer.Option(help="Stop after this many seconds without a new message.")] = 10.0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep waiting for new messages (Ctrl-C stops), however long none comes.")] = False,
    from_end: Annotated[bool, typer.Option("--from-end", help="Only messages published from now on, not the topic's history.")] = False,
    timeout: Annotated[Optional[float], typer.Option(help="Stop after this many seconds in all.")] = None,
) -> None:
    """Print a topic's messages as JSON lines (non-JSON values as base64): its history, then new ones as they come,
    until --idle seconds pass without one (or with --follow, until Ctrl-C). `consume scores -f --from-end` is a tail."""
    import base64

    from bizstream.stream import topics
    from bizstream.stream.client import ensure_topic, read

    name = topics.resolve(topic)
    settings = load(config)
    asyncio.run(ensure_topic(settings.kafka, name))

    async def run() -> int:
        n = 0
        async for message in read(settings.kafka, name, count, timeout, None if follow else idle, from_end):
            try:
                line = orjson.dumps(orjson.loads(message.value))
            except orjson.JSONDecodeError:
                line = orjson.dumps({"raw_base64": base64.b64encode(message.value).decode()})
            sys.stdout.buffer.write(line + b"\n")
            sys.stdout.flush()  # a tail shows each message as it comes
            n += 1
        return n

    try:
        n = asyncio.run(run())
    except KeyboardInterrupt:
        return
    err.print(f"{n} messages from {name}")


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="JSON lines, one post per line ('-' for stdin), or CSV with a `text` column.", allow_dash=True)],
    config: ConfigOption = None,
    allow_rejects: Annotated[bool, typer.Option("--allow-rejects", help="Exit 0 even when some lines were rejected.")] = False,
    as_json: Annotated[Optional[bool], typer.Option("--json/--table", help="Scores as JSON lines (the default when piped) or a table for people (the default on a terminal).", show_default=False)] = None,
) -> None:
    """Score posts offline with the same pipeline as the worker, no broker: Scores on stdout (JSON lines, or a table on
    a terminal), rejects on stderr. Exits 2 when any line was rejected (unless --allow-rejects)."""
    from bizstream.scoring import BatchSizer, Message, score_messages

    table = not as_json if as_json is not None else sys.stdout.isatty()

    lines = post_lines(readable(file))  # a CSV without a `text` column says so here, before any plugin loads
    settings = load(config)
    pipeline = _pipeline(settings)
    batch: list[Message] = []
    counts = {"scored": 0, "rejected": 0}
    sizer = BatchSizer(settings.worker.batch_size, settings.worker.batch_target_s)

    def flush() -> None:
        started = time.perf_counter()
        handled = score_messages(pipeline, batch, settings.limits)
        sizer.observe(len(batch), time.perf_counter() - started)
        if table and handled.scores:
            out.print(_score_table(handled.scores, batch))
        for s in handled.scores if not table else []:
            sys.stdout.buffer.write(s.to_json() + b"\n")
        for _, letter in handled.dead_letters:
            _reject(letter)
        counts["scored"] += len(handled.scores)
        counts["rejected"] += len(handled.dead_letters)
        batch.clear()

    try:
        for number, raw in enumerate(lines, start=1):
            batch.append(Message(raw, None, str(file), 0, number))
            if len(batch) >= sizer.size:  # the worker's batch sizes: a batch fits its analyzers' time budget
                flush()
        if batch:
            flush()
    finally:
        pipeline.close()
        sys.stdout.flush()
    if counts["rejected"]:
        err.print(f"scored {counts['scored']} posts; rejected {counts['rejected']} lines (above, as dead letters)")
        if not allow_rejects:
            raise typer.Exit(2)


def _score_table(scores: list[Score], batch: list[Message]) -> Table:
    """Scores for people: the post, its label and score, how sure, and what each analyzer said."""
    texts: dict[str, str] = {}
    for message in batch:
        try:
            post = orjson.loads(message.value)
            texts[str(post["id"])] = " ".join(str(post.get("text", "")).split())
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
    colors = {"bullish": "green", "bearish": "red", "neutral": "white"}
    grid = Table("post", "text", "label", "score", "conf.", "analyzers", "fused by")
    grid.columns[1].overflow = "ellipsis"
    grid.columns[1].max_width = 60
    for s in scores:
        said = ", ".join(f"{name} {_verdict(r)}" for name, r in s.analyzers.items())
        grid.add_row(escape(s.post_id), escape(texts.get(s.post_id, "")), f"[{colors[s.label.value]}]{s.label.value}[/]",
                     f"{s.score:+.2f}", f"{s.confidence:.2f}", escape(said), escape(s.fusion))  # fmt: skip
    return grid


def _verdict(result: AnalyzerResult) -> str:
    if result.label is None:
        return "error"
    return result.label.value if has_opinion(result.probabilities) else "no opinion"  # OCR reads, does not judge


@app.command()
def demo(
    config: ConfigOption = None,
    posts: Annotated[Optional[Path], typer.Option(help="Posts to stream (default: data/sample_posts.jsonl).")] = None,
    keep_broker: Annotated[bool, typer.Option(help="Leave the broker running afterwards.")] = False,
    timeout: Annotated[float, typer.Option(help="Give up waiting for scores after this many seconds.")] = 120.0,
    loop: Annotated[bool, typer.Option("--loop", help="The whole product instead: every agent and the dashboard on a Kafka of their own; the sample posts, then the sample labels in rounds; every decision the trainer makes; the served model before and after; the top tickers (a few minutes).")] = False,
    keep_dashboard: Annotated[bool, typer.Option("--keep-dashboard", help="With --loop: leave the stack and its dashboard up at the end, until Ctrl-C.")] = False,
) -> None:
    """Start Kafka and a worker, stream the sample posts through, show the scores, stop everything."""
    from bizstream.demo import SAMPLE_LABELS, SAMPLE_POSTS, run_demo

    settings = load(config)
    if loop:
        _loop_demo(settings, max(timeout, 600.0), keep_dashboard)
        return
    colors = {"bullish": "green", "bearish": "red", "neutral": "white"}

    def show(s: dict[str, object], texts: dict[str, str]) -> None:
        text = " ".join(texts.get(str(s["post_id"]), "").split())[:70]
        label = str(s["label"])
        out.print(f"[{colors[label]}]{label:>8} {float(s['score']):+.2f}[/] {s['post_id']:>10}  {text}")  # type: ignore[arg-type]

    result = run_demo(
        settings,
        posts_file=posts or SAMPLE_POSTS,
        labels_file=None if posts else SAMPLE_LABELS,
        keep_broker=keep_broker,
        timeout_s=timeout,
        on_score=show,
        say=lambda line: err.print(f"[bold]>[/] {line}"),
    )
    table = Table("posts", "scored", "dead", "bullish", "neutral", "bearish", "agree", "seconds")
    table.add_row(
        str(result.produced), str(len(result.scores)), str(result.dead_letters),
        *(str(result.labels.get(k, 0)) for k in ("bullish", "neutral", "bearish")),
        f"{result.agreement:.1%}" if result.agreement is not None else "-", f"{result.seconds:.1f}",
    )  # fmt: skip
    out.print(table)
    if len(result.scores) + result.dead_letters < result.produced:  # every line is scored or dead-lettered
        raise BizstreamError(f"only {len(result.scores)} of {result.produced} posts were scored "
                             f"({result.dead_letters} dead-lettered) within {timeout:.0f} s")  # fmt: skip


def _loop_demo(settings: Settings, timeout_s: float, keep_dashboard: bool) -> None:
    from bizstream.demo import LoopResult, run_loop_demo

    def decided(event: dict[str, object]) -> None:
        metrics = event.get("metrics") or {}
        assert isinstance(metrics, dict)
        compared = "; ".join(f"{k.removesuffix('_accuracy')} accuracy {v:.3f} against {metrics[k + '_serving']:.3f} serving"
                             for k, v in sorted(metrics.items()) if k.endswith("_accuracy") and k + "_serving" in metrics)  # fmt: skip
        verdict = "[green]promoted[/]" if event["promoted"] else "[yellow]not promoted[/]"
        out.print(f"  {escape(str(event['analyzer']))} {escape(str(event['version']))}: {verdict} — {escape(str(event['why']))}"
                  + (f" ({escape(compared)})" if compared else ""), highlight=False)  # fmt: skip

    def summary(result: LoopResult) -> None:
        promoted = [d for d in result.decisions if d["promoted"]]
        setfit = [d for d in promoted if d["analyzer"] == "setfit"]
        out.print(f"{len(result.decisions)} decisions ({len(promoted)} promoted), {result.drift_events} drift events, in {result.seconds:.0f} s")
        out.print(f"agreement with the sample labels on the {result.holdout_posts} holdout posts: before any label "
                  f"{result.before:.1%}, after them {result.after:.1%}" + (f"; SetFit serves {setfit[-1]['version']}" if setfit else ""))  # fmt: skip
        tops = ", ".join(f"{w['ticker']} {w['posts']} posts ({float(w['weighted_score']):+.2f})" for w in result.top_tickers)
        out.print(f"most talked-about tickers: {tops or '-'}")
        if keep_dashboard:
            err.print(f"[bold]>[/] the stack keeps running; the dashboard: {result.dashboard} (Ctrl-C stops everything)")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass

    run_loop_demo(settings, timeout_s=timeout_s, say=lambda line: err.print(f"[bold]>[/] {escape(line)}"), on_decision=decided, keep=summary)


@app.command()
def up(
    config: ConfigOption = None,
    dashboard_port: Annotated[Optional[int], typer.Option(help="The dashboard's port (default: dashboard.port).")] = None,
) -> None:
    """The whole local stack: Kafka (started if it is not running), a worker, the sink, the monitor, the trainer, the
    tickers agent and the dashboard. Prints the dashboard's URL; Ctrl-C stops everything it started; a process that
    dies is reported with the end of its log, and the rest are stopped."""
    from bizstream import metrics
    from bizstream.stack import AGENTS, Stack
    from bizstream.stream.broker import LocalBroker
    from bizstream.stream.client import ensure_topics

    settings = load(config)
    # The dashboard's port, tried first: taken, it is one line before anything starts; 0 becomes a free one to print.
    with metrics.bind(settings.dashboard.host, settings.dashboard.port if dashboard_port is None else dashboard_port,
                      "the dashboard (dashboard.port, --dashboard-port)") as probe:  # fmt: skip
        port = probe.getsockname()[1]
    broker = LocalBroker(settings.broker)
    started_broker = not broker.status().running
    if started_broker:
        err.print(f"[bold]>[/] starting Kafka on {broker.bootstrap_servers}")
        broker.start()
    asyncio.run(ensure_topics(settings.kafka))
    stack = Stack(settings.broker.cache_path / "logs")
    try:
        stack.start(AGENTS, extra={"dashboard": ["--port", str(port)]})
        err.print(f"[bold]>[/] started {', '.join(AGENTS)} (logs in {stack.logs})")
        out.print(f"dashboard: http://{settings.dashboard.host}:{port}   (Ctrl-C stops everything)")
        stack.wait()
    except KeyboardInterrupt:
        err.print("[bold]>[/] stopping")
    finally:
        killed = stack.stop()
        if started_broker:
            broker.stop()
        stopped = ", ".join([*stack.children, *(["Kafka"] if started_broker else [])]) or "nothing (none had started)"
        err.print(f"[bold]>[/] stopped {stopped}" + ("" if started_broker else "; Kafka was running before, so it is left up")
                  + (f"; {', '.join(killed)} had to be killed (see {stack.logs})" if killed else ""))  # fmt: skip


def _pipeline(settings: Settings) -> Pipeline:
    """Every available plugin's analyzers and fusers; each unavailable one is named on stderr with why."""
    from bizstream.plugins import load_pipeline

    return load_pipeline(settings, report=lambda s: err.print(f"[yellow]{s.name} unavailable:[/] {escape(s.reason or '')}"))


def _key(line: bytes, topic: str) -> bytes | None:
    """The key a line gets on its topic: a label's post id, anything else's thread id (else its id)."""
    from bizstream.stream import topics

    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    key = obj.get("post_id") if topic == topics.LABELS else obj.get("thread_id") or obj.get("id")
    return str(key).encode() if isinstance(key, (str, int)) else None


def _reject(letter: object) -> None:
    sys.stderr.buffer.write(orjson.dumps(letter, option=orjson.OPT_SERIALIZE_DATACLASS) + b"\n")
