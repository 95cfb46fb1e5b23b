"""Models: training them (``bizstream train``), their registries (``bizstream models``) and their export for serving
(``bizstream export``). Training goes through the plugins' trainers (bizstream.learning.trainers), the same path the
trainer agent's job takes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from bizstream.cli.app import ConfigOption, app, err, load, out
from bizstream.errors import BizstreamError
from bizstream.settings import Settings

if TYPE_CHECKING:
    from bizstream.learning.registry import ModelRegistry
    from bizstream.learning.trainers import Promotion, Trainer
    from bizstream.records import ModelEvent

train_app = typer.Typer(help="Train models from the training labels.", invoke_without_command=True)
app.add_typer(train_app, name="train")
models_app = typer.Typer(help="Model registries (SetFit, CryptoBERT, learned fusion): versions, promotion, rollback.", no_args_is_help=True)
app.add_typer(models_app, name="models")
export_app = typer.Typer(help="Export models for serving.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@train_app.callback()
def train(
    ctx: typer.Context,
    config: ConfigOption = None,
    now: Annotated[bool, typer.Option("--now", help="Run the trainer's retraining job now, in the foreground: new labels + replay, gate, promote.")] = False,
) -> None:
    """Train models: `train --now` runs the trainer agent's job; `train setfit|cryptobert` trains one model directly."""
    if ctx.invoked_subcommand is not None:
        return
    if not now:
        out.print(ctx.get_help())
        raise typer.Exit(0)
    from bizstream.learning.job import run_training_job

    settings = load(config)
    started = time.monotonic()
    result = run_training_job(settings, "manual")
    for line in result.report("manual", time.monotonic() - started):  # what the trainer agent's log says of a job
        out.print(line, markup=False)
    for event in result.events:
        announce(settings, event)


@train_app.command("setfit")
def train_setfit(
    config: ConfigOption = None,
    fast: Annotated[bool, typer.Option("--fast", help="Refit only the head on cached embeddings of the serving model's body (seconds).")] = False,
    profile: Annotated[Optional[str], typer.Option(help="cpu or seed (default: setfit.profile).")] = None,
    promote: Annotated[Optional[bool], typer.Option("--promote/--no-promote", help="Promote the new version regardless of the gate, or never (default: when the gate finds it not worse than the serving version on the holdout).", show_default=False)] = None,
) -> None:
    """Train a SetFit model on the labels outside the evaluation holdout, compare it with the serving version on the
    holdout, and promote it when it is not worse (the trainer's gate); announced on the models topic."""
    settings = load(config)
    if profile is not None:
        settings = settings.replace(setfit={"profile": profile})
    settings = settings.replace(trainer={"mode": "head" if fast else "full"})
    trainer = _trainer(settings, "setfit")
    trainer.load()  # the starter model, when it is on and nothing serves yet
    serving = trainer.registry.serving()
    if fast and serving is None:
        raise BizstreamError("the head-only refit needs a model to start from: turn setfit.starter on, or train a full model first (bizstream train setfit)")
    if fast and serving is not None and settings.setfit.body and settings.setfit.body != trainer.registry.metadata(serving).body_source:
        # The fast path keeps the serving body; a body set in the settings would otherwise be ignored without a word.
        err.print(f"note: --fast refits the head on the body {serving} serves; setfit.body ({settings.setfit.body}) "
                  "is what a full fine-tune (bizstream train setfit) starts from", markup=False, highlight=False)  # fmt: skip
    policies: dict[bool | None, Promotion] = {True: "always", False: "never", None: "gate"}
    _train(settings, trainer, policies[promote])


@train_app.command("cryptobert")
def train_cryptobert(
    config: ConfigOption = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training labels.")] = 1,
    lr: Annotated[float, typer.Option(help="Learning rate of the LoRA parameters.")] = 5e-4,
    export: Annotated[bool, typer.Option("--onnx/--no-onnx", help="Export the merged model to INT8 ONNX for CPU serving.")] = True,
) -> None:
    """LoRA-fine-tune CryptoBERT (r=16, alpha=32) on the training labels, add the adapter to CryptoBERT's registry,
    and promote it when it is not worse than the serving model's on the evaluation holdout (trainer.gate_margin)."""
    settings = load(config)
    options = {**settings.plugins.options, "cryptobert": {**settings.plugins.options_for("cryptobert"),
                                                          "epochs": epochs, "lr": lr, "onnx": export}}  # fmt: skip
    settings = settings.replace(plugins={"options": options})
    _train(settings, _trainer(settings, "cryptobert"), "gate")


def _train(settings: Settings, trainer: Trainer, policy: Promotion) -> None:
    """The one training path (bizstream.learning.trainers): train outside the evaluation holdout, gate on it."""
    from bizstream.learning.dataset import Split
    from bizstream.learning.trainers import train_candidate
    from bizstream.store.labels import LabelStore

    store = LabelStore(settings.store_path)
    if store.count() < 10:
        raise BizstreamError(f"only {store.count()} labels in {settings.store_path}; import some first (bizstream labels import FILE)")
    try:  # the persistent evaluation holdout the trainer's job gates on too: no training ever sees it
        split = Split.on_holdout(store.examples(), settings.trainer.eval_share)
    except ValueError as exc:
        raise BizstreamError(str(exc)) from None
    holdout = {"holdout": (split.test_texts, split.test_labels)}
    outcome = train_candidate(settings, trainer, split, holdout, {"holdout": settings.trainer.gate_margin}, policy)
    out.print(outcome.summary(), markup=False)
    announce(settings, outcome.event("manual"))


@train_app.command("sarcasm")
def train_sarcasm(
    file: Annotated[Path, typer.Argument(help="CSV with `text` and `label` (sarcastic / not_sarcastic, or 1 / 0).")],
    config: ConfigOption = None,
    output: Annotated[Optional[Path], typer.Option("--out", help="Where to write the head (default: where the sarcasm fuser looks).")] = None,
    base_rate: Annotated[float, typer.Option(help="Share of sarcastic posts your stream has: the decision threshold is chosen for it.")] = 0.15,
    fine_tune: Annotated[bool, typer.Option("--fine-tune/--frozen", help="Fine-tune the sentence body on the labels (minutes; on iSarcasmEval it did not help: F1 0.275 against 0.300 frozen), or keep it frozen (seconds).")] = False,
    iterations: Annotated[int, typer.Option(help="SetFit pairs per text when fine-tuning.")] = 2,
    body: Annotated[Optional[Path], typer.Option(help="A local sentence-transformers folder (safetensors) to build on instead of the packaged all-MiniLM-L6-v2, e.g. a larger encoder: all of MiniLM fine-tuned peaked at F1 0.36 on iSarcasmEval.")] = None,
) -> None:
    """Train the text sarcasm model the sarcasm fuser uses for posts without an image: a sentence body (all-MiniLM-L6-v2
    unless --body; fine-tuned on the labels with --fine-tune), a balanced logistic-regression head, and the threshold
    with the best F1 at --base-rate."""
    import sys

    from bizstream_plugins.sarcasm.model import default_head_path
    from bizstream_plugins.sarcasm.training import train_from_csv

    settings = load(config)
    trained = train_from_csv(file, output or default_head_path(settings), seed=settings.setfit.seed, base_rate=base_rate,
                             fine_tune_body=fine_tune, iterations=iterations, show_progress=sys.stderr.isatty(), body=body)  # fmt: skip
    out.print(f"trained on {trained.examples} posts ({trained.sarcastic} sarcastic); wrote {trained.path}; sarcastic "
              f"from P >= {trained.threshold:.2f} (F1 {trained.validation_f1:.3f} on the held-back fifth at base rate {base_rate})")


@train_app.command("fusion")
def train_fusion(config: ConfigOption = None) -> None:
    """Fit the learned fusion (each analyzer's weight, the classes' base rates, a temperature) on the evaluation
    holdout's labels, with the models that serve now; promote it when it is not worse than what fuses now."""
    from bizstream.learning.fusion import UpToDate
    from bizstream.learning.fusion import train_fusion as fit

    settings = load(config)
    outcome = fit(settings)
    if isinstance(outcome, UpToDate):  # nothing new to fit from: not a failure
        out.print(outcome, markup=False)
        return
    if isinstance(outcome, str):
        raise BizstreamError(outcome)
    out.print(outcome.summary(), markup=False)
    announce(settings, outcome.event("manual"))


AnalyzerOption = Annotated[str, typer.Option("--analyzer", "-a", help="setfit, cryptobert or fusion.")]


def _trainer(settings: Settings, analyzer: str) -> Trainer:
    """The trainer a plugin contributes for ``analyzer`` (its registry included)."""
    from bizstream.learning.trainers import load_trainers

    trainers = load_trainers(settings)
    if analyzer not in trainers:
        raise BizstreamError(f"--analyzer must be one of {', '.join(sorted([*trainers, 'fusion']))}, got {analyzer!r}")
    return trainers[analyzer]


def _registry(settings: Settings, analyzer: str) -> ModelRegistry:
    if analyzer == "fusion":
        from bizstream.learning.fusion import fusion_registry

        return fusion_registry(settings.fusion_registry)
    return _trainer(settings, analyzer).registry


@models_app.command("list")
def models_list(config: ConfigOption = None, analyzer: AnalyzerOption = "setfit") -> None:
    """Every version, its metrics (accuracy and macro-F1 on the number of posts shown: versions evaluated on different
    posts are not directly comparable; the gate compares them on the same ones), what the gate decided and why, and
    which one serves."""
    registry = _registry(load(config), analyzer)
    serving = registry.serving()
    table = Table("version", "kind", "parent", "accuracy", "macro-F1", "measured on", "trained on", "serving", "decision")
    for column in table.columns[:8]:
        column.no_wrap = True  # versions stay whole, so they can be pasted into `models promote`
    for m in registry.list():
        decision = registry.decision(m.version)
        said = "-" if decision is None else f"{'promoted' if decision['promoted'] else 'not promoted'}: {decision['why']}"
        accuracy, f1, where = _headline(m.metrics)
        table.add_row(m.version, m.kind, m.parent or "-", f"{accuracy:.3f}", f"{f1:.3f}", where,
                      str(int(m.metrics.get("train_examples", 0))),
                      "yes" if m.version == serving else "", escape(said))  # fmt: skip
    if not table.rows:
        out.print(f"no {analyzer} versions in {registry.root} yet: {_NONE_YET.get(analyzer, 'train one')}", markup=False)
        return
    out.print(table)


_NONE_YET = {  # what serves before the first version, and how one comes
    "setfit": "the starter model (v0-starter) is installed and promoted the first time SetFit loads "
              "(bizstream score, worker, train setfit)",
    "cryptobert": "the base model (where its weights are) serves until `bizstream train cryptobert` promotes an adapter",
    "fusion": "the fixed weights ([fusion.weights]) fuse until `bizstream train fusion` promotes a learned fusion",
}


def _headline(metrics: dict[str, float]) -> tuple[float, float, str]:
    """Accuracy, macro-F1 and what they were measured on: the holdout of your labels, or (the starter) a named public
    test set — so versions measured on different posts do not look comparable."""
    if "accuracy" in metrics:
        return metrics["accuracy"], metrics.get("macro_f1", float("nan")), f"{int(metrics.get('eval_examples', 0))} holdout"
    named = [k.removesuffix("_accuracy") for k in metrics if k.endswith("_accuracy")]
    if not named:
        return float("nan"), float("nan"), "-"
    name = max(named, key=lambda n: metrics.get(f"{n}_eval_examples", 0))  # the largest test set it names
    return metrics[f"{name}_accuracy"], metrics.get(f"{name}_macro_f1", float("nan")), f"{int(metrics.get(f'{name}_eval_examples', 0))} {name}"


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version to serve.")], config: ConfigOption = None,
    analyzer: AnalyzerOption = "setfit",
) -> None:  # fmt: skip
    """Serve VERSION (an atomic switch; running workers pick it up between batches), announced on the models topic."""
    settings = load(config)
    registry = _registry(settings, analyzer)
    registry.promote(version)
    _announce(settings, analyzer, registry, version, "promoted by hand (bizstream models promote)")
    out.print(f"{version} serves now")


@models_app.command("import")
def models_import(
    directory: Annotated[Path, typer.Argument(help="A registry folder written elsewhere (e.g. by bizstream_plugins.setfit.standalone).")],
    config: ConfigOption = None,
    promote: Annotated[bool, typer.Option(help="Promote the newest imported version.")] = False,
    analyzer: AnalyzerOption = "setfit",
) -> None:
    """Copy versions (and their bodies) from another registry folder into this one; --promote serves the newest and
    announces it on the models topic."""
    from bizstream.learning.registry import ModelRegistry

    settings = load(config)
    registry = _registry(settings, analyzer)
    added = registry.import_from(ModelRegistry(directory, payload=registry.payload))
    out.print(f"imported {len(added)} versions: {', '.join(added) or '-'}")
    if promote and added:
        registry.promote(added[-1])
        _announce(settings, analyzer, registry, added[-1], f"imported from {directory} and promoted (bizstream models import --promote)")
        out.print(f"{added[-1]} serves now")


@models_app.command("rollback")
def models_rollback(config: ConfigOption = None, analyzer: AnalyzerOption = "setfit") -> None:
    """Serve the version that served before the current one, announced on the models topic."""
    settings = load(config)
    registry = _registry(settings, analyzer)
    current = registry.serving()
    version = registry.rollback()
    _announce(settings, analyzer, registry, version, f"rolled back by hand from {current} (bizstream models rollback)")
    out.print(f"{version} serves now")


def announce(settings: Settings, event: ModelEvent) -> None:
    """Put a decision on the models topic with the serving version's files, where workers on any machine follow them
    (one line when no broker runs: the decision stands here either way)."""
    from bizstream.stream.models import announce as publish

    publish(settings, event)


def _announce(settings: Settings, analyzer: str, registry: ModelRegistry, version: str, why: str) -> None:
    from bizstream.records import ModelEvent

    metrics = registry.metadata(version).metrics
    announce(settings, ModelEvent(analyzer, version, metrics, "manual", True, why))


@export_app.command("onnx")
def export_onnx(
    config: ConfigOption = None,
    version: Annotated[Optional[str], typer.Option(help="Version whose body to export (default: the serving one).")] = None,
    keep_fp32: Annotated[str, typer.Option(help="none (fastest), or ffn-out: keep the feed-forward outputs in fp32 (slower, closer to torch).")] = "none",
) -> None:
    """Export the SetFit body to ONNX and an INT8-quantized copy; the analyzer serves INT8 when setfit.runtime=auto."""
    from bizstream.export.onnx import check_keep_fp32
    from bizstream.learning.registry import ModelRegistry
    from bizstream_plugins.setfit.export import export_version

    try:
        check_keep_fp32(keep_fp32)
    except ValueError as exc:
        raise BizstreamError(str(exc)) from None
    exported = export_version(ModelRegistry(load(config).setfit_registry), version, keep_fp32=keep_fp32)
    out.print(f"wrote {exported.fp32} and {exported.int8}")
