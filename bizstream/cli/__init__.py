"""The ``bizstream`` command. Thin: it parses arguments, then calls the library."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bizstream.errors import BizstreamError, InvalidRecord

if TYPE_CHECKING:
    import faust

    from bizstream.labeler import LabelSession
    from bizstream.learning.registry import ModelRegistry
    from bizstream.pipeline import Pipeline
from bizstream.settings import Settings, load_settings

app = typer.Typer(
    help="Live sentiment for crypto/finance posts on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
broker_app = typer.Typer(help="Run the local single-node Kafka broker (fetched from Maven Central).", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
labels_app = typer.Typer(help="Training labels in the embedded SQLite store.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")
train_app = typer.Typer(help="Train models from the training labels.", invoke_without_command=True)
app.add_typer(train_app, name="train")
models_app = typer.Typer(help="Model registries (SetFit, CryptoBERT): versions, promotion, rollback.", no_args_is_help=True)
app.add_typer(models_app, name="models")
export_app = typer.Typer(help="Export models for serving.", no_args_is_help=True)
app.add_typer(export_app, name="export")
err = Console(stderr=True, soft_wrap=True)
out = Console()

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Settings file (default: $BIZSTREAM_CONFIG or config/settings.toml).", envvar=None),
]

LogLevelOption = Annotated[str, typer.Option(help="debug, info, warning or error.")]


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


@broker_app.command("start")
def broker_start(config: ConfigOption = None) -> None:
    """Fetch Kafka (first time), start it on 127.0.0.1, wait until it answers, create bizstream's topics."""
    from bizstream.stream.broker import LocalBroker
    from bizstream.stream.client import ensure_topics

    settings = _settings(config)
    broker = LocalBroker(settings.broker)
    err.print(f"starting Kafka {settings.broker.kafka_version} (data and logs in {broker.directory}) ...")
    status = broker.start()
    asyncio.run(ensure_topics(dataclasses.replace(settings.kafka, bootstrap_servers=status.bootstrap_servers)))
    out.print(f"Kafka is up on {status.bootstrap_servers} (pid {status.pid})")


@broker_app.command("stop")
def broker_stop(
    config: ConfigOption = None,
    delete: Annotated[bool, typer.Option(help="Also delete the broker's data and logs.")] = False,
) -> None:
    """Stop the local broker cleanly (SIGTERM, then SIGKILL after 30 s)."""
    from bizstream.stream.broker import LocalBroker

    broker = LocalBroker(_settings(config).broker)
    was = broker.status()
    broker.delete() if delete else broker.stop()
    out.print("stopped" if was.running else "the broker was not running")


@broker_app.command("status")
def broker_status(config: ConfigOption = None) -> None:
    """Say whether the local broker runs and answers; exit 1 when it does not."""
    from bizstream.stream.broker import LocalBroker

    status = LocalBroker(_settings(config).broker).status()
    state = "ready" if status.ready else ("running, not answering yet" if status.running else "stopped")
    out.print(f"{state}: {status.bootstrap_servers} pid={status.pid} dir={status.directory}")
    if not status.ready:
        raise typer.Exit(1)


@app.command()
def worker(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Consume posts, score them with every available analyzer, produce Scores (and dead letters). Ctrl-C stops."""
    from bizstream.stream.worker import create_app

    settings = _settings(config)
    _run_faust(create_app(settings, _pipeline(settings)), log_level)


@app.command()
def monitor(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Join labels to earlier scores, watch each analyzer's error with ADWIN, publish drift events. One per cluster."""
    from bizstream.stream.monitor import create_monitor_app

    _run_faust(create_monitor_app(_settings(config)), log_level)


@app.command()
def trainer(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Store labels from the labels topic and retrain (in a separate process) on enough new labels or on drift."""
    from bizstream.stream.trainer import create_trainer_app

    _run_faust(create_trainer_app(_settings(config)), log_level)


@app.command()
def sink(
    config: ConfigOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Write every scored post (text, image reference, thread, Score) to SQLite, for the labeler and dashboards."""
    from bizstream.stream.sink import create_sink_app

    _run_faust(create_sink_app(_settings(config)), log_level)


@app.command()
def label(
    config: ConfigOption = None,
    active_learning: Annotated[bool, typer.Option("--active-learning", help="Most useful posts first (uncertainty + diversity), not newest first.")] = False,
    limit: Annotated[int, typer.Option(help="Posts in this session.")] = 50,
    labeler: Annotated[str, typer.Option(help="Your name, recorded with each label.", envvar="USER")] = "labeler",
) -> None:
    """Label posts from the keyboard: 1 bearish, 2 neutral, 3 bullish, s skip, u undo, q quit. Keys can come from stdin."""
    from bizstream.labeler import LabelSession
    from bizstream.store.labels import LabelStore
    from bizstream.store.scored import ScoredPostStore

    settings = _settings(config)
    store = ScoredPostStore(LabelStore(settings.store_path))
    if active_learning:
        from bizstream.learning.suggest import get_suggested_posts

        chosen = [store.get(post_id) for post_id in get_suggested_posts(settings, labeler, limit)]
        queue = [p for p in chosen if p is not None]
    else:
        queue = store.unlabelled(labeler, limit)
    session = LabelSession(settings, labeler, queue)
    session.flush(force=True)  # labels a broker outage kept from an earlier session
    if session.current is None:
        out.print("nothing to label: no unlabelled scored posts (run `bizstream sink` beside the worker)")
        return
    keys = _keys()
    try:
        while session.current is not None:
            _show(session)
            key = next(keys, "q")
            if not session.press(key):
                break
    except KeyboardInterrupt:
        out.print("\ninterrupted")
    finally:
        session.flush(force=True)
        out.print(session.progress() + f" · {session.sent} sent to {'bizstream.labels.v1'}")


def _show(session: LabelSession) -> None:
    post = session.current
    assert post is not None
    out.rule(f"post {post.post_id}" + (f" · thread {post.thread_id}" if post.thread_id else ""))
    parent = session.parent(post)
    if parent is not None:
        out.print(f"[dim]in reply to {parent.post_id}: {parent.text[:200]}[/]")
    out.print(post.text, markup=False)
    if post.image:
        out.print(f"[dim]image: {post.image}[/]")
    if post.label:
        out.print(f"model: [bold]{post.label}[/] ({(post.confidence or 0):.0%})")
    out.print(f"[dim]{session.progress()}[/]")
    out.print("1 bearish · 2 neutral · 3 bullish · s skip · u undo · q quit")


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


@app.command()
def produce(
    file: Annotated[Path, typer.Argument(help="JSON lines, one post per line ('-' for stdin).", allow_dash=True)],
    config: ConfigOption = None,
    topic: Annotated[str, typer.Option(help="Topic or alias.")] = "posts",
) -> None:
    """Publish posts, one JSON object per line, keyed by thread id. Lines are sent as they are: the worker validates."""
    from bizstream.stream import topics
    from bizstream.stream.client import ensure_topics, publish

    settings = _settings(config)
    records = [(_thread_key(line), line) for line in _lines(file)]
    asyncio.run(ensure_topics(settings.kafka))
    sent = asyncio.run(publish(settings.kafka, topics.resolve(topic), records))
    err.print(f"published {sent} messages to {topics.resolve(topic)}")


@app.command()
def consume(
    topic: Annotated[str, typer.Argument(help="Topic or alias: posts, scores, deadletter, labels, drift, models.")],
    config: ConfigOption = None,
    count: Annotated[Optional[int], typer.Option(help="Stop after this many messages.")] = None,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds.")] = 10.0,
) -> None:
    """Print a topic's messages from its beginning as JSON lines (non-JSON values as base64)."""
    import base64

    from bizstream.stream import topics
    from bizstream.stream.client import read

    settings = _settings(config)

    async def run() -> int:
        n = 0
        async for message in read(settings.kafka, topics.resolve(topic), count, timeout):
            try:
                line = orjson.dumps(orjson.loads(message.value))
            except orjson.JSONDecodeError:
                line = orjson.dumps({"raw_base64": base64.b64encode(message.value).decode()})
            sys.stdout.buffer.write(line + b"\n")
            n += 1
        sys.stdout.flush()
        return n

    n = asyncio.run(run())
    err.print(f"{n} messages from {topics.resolve(topic)}")


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="JSON lines, one post per line ('-' for stdin).", allow_dash=True)],
    config: ConfigOption = None,
) -> None:
    """Score posts offline with the same pipeline as the worker, no broker: Scores on stdout, rejects on stderr."""
    from bizstream.records import DeadLetter, Post

    settings = _settings(config)
    pipeline = _pipeline(settings)
    size = settings.worker.batch_size
    batch: list[Post] = []
    line_of: dict[str, tuple[int, bytes]] = {}

    def flush() -> None:
        result = pipeline.score(batch)
        for s in result.scores:
            sys.stdout.buffer.write(s.to_json() + b"\n")
        for miss in result.unscored:
            number, raw = line_of[miss.post.id]
            _reject(DeadLetter.for_bytes(raw, topic=str(file), partition=0, offset=number, stage="analyze",
                                         error_type="AnalyzerError", message=miss.reason))  # fmt: skip
        batch.clear()
        line_of.clear()

    try:
        for number, raw in enumerate(_lines(file), start=1):
            try:
                post = Post.from_json(raw, settings.limits)
            except InvalidRecord as exc:
                _reject(DeadLetter.for_bytes(raw, topic=str(file), partition=0, offset=number, stage="validate",
                                             error_type="InvalidRecord", message=str(exc)))  # fmt: skip
                continue
            batch.append(post)
            line_of[post.id] = (number, raw)
            if len(batch) >= size:
                flush()
        if batch:
            flush()
    finally:
        pipeline.close()
        sys.stdout.flush()


@app.command()
def demo(
    config: ConfigOption = None,
    posts: Annotated[Optional[Path], typer.Option(help="Posts to stream (default: data/sample_posts.jsonl).")] = None,
    keep_broker: Annotated[bool, typer.Option(help="Leave the broker running afterwards.")] = False,
    timeout: Annotated[float, typer.Option(help="Give up waiting for scores after this many seconds.")] = 120.0,
) -> None:
    """Start Kafka and a worker, stream the sample posts through, show the scores, stop everything."""
    from bizstream.demo import SAMPLE_LABELS, SAMPLE_POSTS, run_demo

    settings = _settings(config)
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
    if len(result.scores) < result.produced:
        raise BizstreamError(f"only {len(result.scores)} of {result.produced} posts were scored within {timeout:.0f} s")


@app.command()
def plugins(config: ConfigOption = None) -> None:
    """List every plugin, analyzer and fuser, whether it is available, and why not."""
    from bizstream.plugins import get_plugin_manager, load_analyzers, load_fusers

    settings = _settings(config)
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


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON lines: a `text` column plus `label` (bearish/neutral/bullish) or `rating` (1..3).")],
    config: ConfigOption = None,
    labeler: Annotated[str, typer.Option(help="Labeler name for rows that do not give one.")] = "import",
) -> None:
    """Import labels; rows with bad values are reported by line number and skipped, the good ones all imported."""
    from bizstream.store.labels import LabelStore

    settings = _settings(config)
    store = LabelStore(settings.store_path)
    report = store.import_file(file, labeler=labeler)
    for line, message in report.errors:
        err.print(f"{file}:{line}: {message}")
    out.print(f"imported {report.imported} labels into {settings.store_path} ({len(report.errors)} rows rejected; {store.count()} in all)")
    if report.errors:
        raise typer.Exit(2)


@labels_app.command("export")
def labels_export(
    file: Annotated[Path, typer.Argument(help="JSON lines to write (one label per line), e.g. to train on a GPU box.")],
    config: ConfigOption = None,
) -> None:
    """Write every training label as JSON lines (post_id, thread_id, text, rating, labeler, source, labeled_at)."""
    from dataclasses import asdict

    from bizstream.store.labels import LabelStore

    rows = LabelStore(_settings(config).store_path).rows()
    with file.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(asdict(row)) + b"\n")
    out.print(f"wrote {len(rows)} labels to {file}")


@train_app.callback()
def train(
    ctx: typer.Context,
    config: ConfigOption = None,
    now: Annotated[bool, typer.Option("--now", help="Run the trainer's retraining job now, in the foreground: new labels + replay, gate, promote.")] = False,
) -> None:
    """Train models: `train --now` runs the trainer agent's job; `train setfit` trains a SetFit model directly."""
    if ctx.invoked_subcommand is not None:
        return
    if not now:
        out.print(ctx.get_help())
        raise typer.Exit(0)
    from bizstream.learning.job import run_training_job

    result = run_training_job(_settings(config), "manual")
    out.print(f"candidate {result.candidate or '-'}: {'promoted' if result.promoted else 'not promoted'} ({result.why})")
    for key, value in result.metrics.items():
        out.print(f"  {key} = {value:.4g}")


@train_app.command("setfit")
def train_setfit(
    config: ConfigOption = None,
    fast: Annotated[bool, typer.Option("--fast", help="Refit only the head on cached embeddings of the serving model's body (seconds).")] = False,
    profile: Annotated[Optional[str], typer.Option(help="cpu or seed (default: setfit.profile).")] = None,
    promote: Annotated[Optional[bool], typer.Option("--promote/--no-promote", help="Promote the new version (default: only when nothing serves yet).")] = None,
) -> None:
    """Train a SetFit model on the training labels (80/20 stratified split), evaluate it, add it to the registry."""
    from bizstream.learning.dataset import Split
    from bizstream.learning.embeddings import default_body
    from bizstream.learning.registry import ModelRegistry
    from bizstream.learning.tracking import log_training, tracking_uri
    from bizstream.store.labels import LabelStore
    from bizstream_plugins.setfit.training import PROFILES, refit_head, train_full

    settings = _settings(config)
    store = LabelStore(settings.store_path)
    if store.count() < 10:
        raise BizstreamError(f"only {store.count()} labels in {settings.store_path}; import some first (bizstream labels import FILE)")
    split = Split.from_dataset(store.dataset(seed=settings.setfit.seed))
    registry = ModelRegistry(settings.setfit_registry)
    if fast:
        metadata = refit_head(registry, split, seed=settings.setfit.seed)
    else:
        chosen = profile or settings.setfit.profile
        if chosen not in PROFILES:
            raise BizstreamError(f"--profile must be one of {sorted(PROFILES)}, got {chosen!r}")
        body = settings.setfit.body or str(default_body())
        metadata = train_full(registry, split, body, PROFILES[chosen], seed=settings.setfit.seed,
                              max_seq_length=settings.setfit.max_seq_length, parent=registry.serving(),
                              device=settings.setfit.device)  # fmt: skip
    out.print(f"trained {metadata.version} ({metadata.kind}): " + ", ".join(f"{k}={v:.4g}" for k, v in metadata.metrics.items()))
    run_id = log_training(settings, registry, metadata)
    if run_id:
        out.print(f"tracked as MLflow run {run_id} ({tracking_uri(settings)})")
    if promote or (promote is None and registry.serving() is None):
        registry.promote(metadata.version)
        out.print(f"promoted {metadata.version}: it serves now")


@train_app.command("cryptobert")
def train_cryptobert(
    config: ConfigOption = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training labels.")] = 1,
    lr: Annotated[float, typer.Option(help="Learning rate of the LoRA parameters.")] = 5e-4,
    export: Annotated[bool, typer.Option("--onnx/--no-onnx", help="Export the merged model to INT8 ONNX for CPU serving.")] = True,
) -> None:
    """LoRA-fine-tune CryptoBERT (r=16, alpha=32) on the training labels, add the adapter to CryptoBERT's registry,
    and promote it when its held-back accuracy is not worse than the serving model's (trainer.gate_margin)."""
    from bizstream.learning.dataset import Split
    from bizstream.learning.tracking import log_training
    from bizstream.store.labels import LabelStore
    from bizstream_plugins.cryptobert.model import DEFAULT_MODEL
    from bizstream_plugins.cryptobert.training import train_version

    settings = _settings(config)
    split = Split.from_dataset(LabelStore(settings.store_path).dataset(seed=settings.setfit.seed))
    options = settings.plugins.options_for("cryptobert")
    registry = _registry(settings, "cryptobert")
    outcome = train_version(registry, str(options.get("model", DEFAULT_MODEL)), split, epochs=epochs, lr=lr,
                            seed=settings.setfit.seed, max_length=int(options.get("max_length", 128)),
                            gate_margin=settings.trainer.gate_margin, export=export)  # fmt: skip
    m = outcome.metadata
    out.print(f"trained {m.version} (adapter in {registry.version_dir(m.version)}): held-back accuracy "
              f"{m.metrics['accuracy']:.3f}, macro-F1 {m.metrics['macro_f1']:.3f}; {outcome.incumbent} "
              f"{outcome.incumbent_metrics['accuracy']:.3f} / {outcome.incumbent_metrics['macro_f1']:.3f}")  # fmt: skip
    log_training(settings, registry, m)
    out.print(f"promoted {m.version}: it serves now" if outcome.promoted else f"not promoted: {outcome.incumbent} keeps serving")


@train_app.command("sarcasm")
def train_sarcasm(
    file: Annotated[Path, typer.Argument(help="CSV with `text` and `label` (sarcastic / not_sarcastic, or 1 / 0).")],
    config: ConfigOption = None,
    output: Annotated[Optional[Path], typer.Option("--out", help="Where to write the head (default: where the sarcasm fuser looks).")] = None,
) -> None:
    """Train the text-only sarcasm signal (a balanced logistic-regression head on all-MiniLM-L6-v2 embeddings) that
    the sarcasm fuser uses for posts without an image."""
    from bizstream_plugins.sarcasm.model import default_head_path
    from bizstream_plugins.sarcasm.training import train_from_csv

    settings = _settings(config)
    trained = train_from_csv(file, output or default_head_path(settings), seed=settings.setfit.seed)
    out.print(f"trained on {trained.examples} posts ({trained.sarcastic} sarcastic); wrote {trained.path}")


ANALYZERS_WITH_REGISTRIES = ("setfit", "cryptobert")
AnalyzerOption = Annotated[str, typer.Option("--analyzer", "-a", help="setfit or cryptobert.")]


def _registry(settings: Settings, analyzer: str) -> ModelRegistry:
    from bizstream.learning.registry import ModelRegistry
    from bizstream_plugins.cryptobert.model import registry_at

    if analyzer == "setfit":
        return ModelRegistry(settings.setfit_registry)
    if analyzer == "cryptobert":
        return registry_at(settings.cryptobert_registry)
    raise BizstreamError(f"--analyzer must be one of {ANALYZERS_WITH_REGISTRIES}, got {analyzer!r}")


@models_app.command("list")
def models_list(config: ConfigOption = None, analyzer: AnalyzerOption = "setfit") -> None:
    """Every version, its metrics, and which one serves."""
    registry = _registry(_settings(config), analyzer)
    serving = registry.serving()
    table = Table("version", "kind", "parent", "accuracy", "macro-F1", "examples", "serving")
    for m in registry.list():
        table.add_row(m.version, m.kind, m.parent or "-", f"{m.metrics.get('accuracy', float('nan')):.3f}",
                      f"{m.metrics.get('macro_f1', float('nan')):.3f}", str(int(m.metrics.get("train_examples", 0))),
                      "yes" if m.version == serving else "")  # fmt: skip
    out.print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version to serve.")], config: ConfigOption = None,
    analyzer: AnalyzerOption = "setfit",
) -> None:  # fmt: skip
    """Serve VERSION (an atomic switch; running workers pick it up between batches)."""
    _registry(_settings(config), analyzer).promote(version)
    out.print(f"{version} serves now")


@models_app.command("import")
def models_import(
    directory: Annotated[Path, typer.Argument(help="A registry folder written elsewhere (e.g. by bizstream_plugins.setfit.standalone).")],
    config: ConfigOption = None,
    promote: Annotated[bool, typer.Option(help="Promote the newest imported version.")] = False,
    analyzer: AnalyzerOption = "setfit",
) -> None:
    """Copy versions (and their bodies) from another registry folder into this one."""
    from bizstream.learning.registry import ModelRegistry

    registry = _registry(_settings(config), analyzer)
    added = registry.import_from(ModelRegistry(directory, payload=registry.payload))
    out.print(f"imported {len(added)} versions: {', '.join(added) or '-'}")
    if promote and added:
        registry.promote(added[-1])
        out.print(f"{added[-1]} serves now")


@models_app.command("rollback")
def models_rollback(config: ConfigOption = None, analyzer: AnalyzerOption = "setfit") -> None:
    """Serve the version that served before the current one."""
    out.print(f"{_registry(_settings(config), analyzer).rollback()} serves now")


@export_app.command("onnx")
def export_onnx(
    config: ConfigOption = None,
    version: Annotated[Optional[str], typer.Option(help="Version whose body to export (default: the serving one).")] = None,
    keep_fp32: Annotated[str, typer.Option(help="none (fastest), or ffn-out: keep the feed-forward outputs in fp32 (slower, closer to torch).")] = "none",
) -> None:
    """Export the SetFit body to ONNX and an INT8-quantized copy; the analyzer serves INT8 when setfit.runtime=auto."""
    from bizstream.learning.registry import ModelRegistry
    from bizstream_plugins.setfit.export import export_version

    exported = export_version(ModelRegistry(_settings(config).setfit_registry), version, keep_fp32=keep_fp32)
    out.print(f"wrote {exported.fp32} and {exported.int8}")


def _run_faust(faust_app: "faust.App", log_level: str) -> None:
    """Run a faust app in the foreground until SIGTERM / Ctrl-C (faust's Worker exits the process)."""
    import faust

    faust.Worker(faust_app, loglevel=log_level.upper(), quiet=True).execute_from_commandline()


def _pipeline(settings: Settings) -> Pipeline:
    from bizstream.plugins import load_pipeline

    return load_pipeline(settings, report=lambda s: err.print(f"[yellow]{s.name} unavailable:[/] {escape(s.reason or '')}"))


def _lines(file: Path) -> Iterator[bytes]:
    stream = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    with stream:
        for line in stream:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line


def _thread_key(line: bytes) -> bytes | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    key = obj.get("thread_id") or obj.get("id")
    return str(key).encode() if isinstance(key, (str, int)) else None


def _reject(letter: object) -> None:
    sys.stderr.buffer.write(orjson.dumps(letter, option=orjson.OPT_SERIALIZE_DATACLASS) + b"\n")


def main() -> None:
    """Entry point: run the CLI, turning bizstream's own errors into one clear line and exit code 1."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except BizstreamError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
