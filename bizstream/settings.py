"""Typed settings, loaded and validated once at start-up.

Defaults are the dataclass defaults below; ``config/settings.toml`` documents every one of them (a test keeps the two
identical). A settings file overrides the defaults, and environment variables override the file:
``BIZSTREAM_<SECTION>__<KEY>`` (two underscores between section and key), e.g. ``BIZSTREAM_WORKER__BATCH_SIZE=64``.
Values from the environment are read as TOML values (``64``, ``0.5``, ``true``, ``["a", "b"]``) and fall back to a
plain string. ``BIZSTREAM_CONFIG`` names the settings file to read.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bizstream.errors import ConfigError

ENV_PREFIX = "BIZSTREAM_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "settings.toml"


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "bizstream")


@dataclass(frozen=True)
class KafkaSettings:
    """Where the Kafka cluster is and how bizstream's topics are created."""

    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = 4
    replication_factor: int = 1
    connect_timeout_s: float = 60.0  # an agent started before its broker waits this long for it (with back-off)
    models_key: str = ""  # shared secret: decisions on the models topic are signed with it, and only signed ones serve
    labels_key: str = ""  # shared secret: labels are signed with it, and the trainer learns only from signed ones

    def validate(self) -> None:
        _require(bool(self.bootstrap_servers.strip()), "kafka.bootstrap_servers must not be empty")
        for name, key in (("models_key", self.models_key), ("labels_key", self.labels_key)):
            _require(not key or len(key) >= 16, f"kafka.{name} must be empty or at least 16 characters")
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            _require(bool(host) and port.isdigit() and 0 < int(port) < 65536,
                     f"kafka.bootstrap_servers must be host:port[,host:port...] with ports 1..65535, got {server.strip()!r}")  # fmt: skip
        _require(self.connect_timeout_s >= 0, f"kafka.connect_timeout_s must be >= 0, got {self.connect_timeout_s}")
        _require(self.partitions >= 1, f"kafka.partitions must be >= 1, got {self.partitions}")
        _require(self.replication_factor >= 1, f"kafka.replication_factor must be >= 1, got {self.replication_factor}")


@dataclass(frozen=True)
class BrokerSettings:
    """The single-node Apache Kafka (KRaft) that bizstream fetches from Maven Central and runs itself."""

    kafka_version: str = "4.1.1"
    port: int = 9092
    controller_port: int = 9093
    cache_dir: str = ""  # empty: $XDG_CACHE_HOME/bizstream or ~/.cache/bizstream
    heap_mb: int = 512
    start_timeout_s: float = 120.0

    def validate(self) -> None:
        for name in ("port", "controller_port"):
            value = getattr(self, name)
            _require(0 < value < 65536, f"broker.{name} must be a TCP port (1..65535), got {value}")
        _require(self.port != self.controller_port, "broker.port and broker.controller_port must differ")
        _require(self.heap_mb >= 128, f"broker.heap_mb must be >= 128, got {self.heap_mb}")
        _require(self.start_timeout_s > 0, f"broker.start_timeout_s must be > 0, got {self.start_timeout_s}")

    @property
    def cache_path(self) -> Path:
        """The folder that holds the broker's jars, data and logs (never inside the source tree)."""
        return Path(self.cache_dir or _default_cache_dir()).expanduser()


@dataclass(frozen=True)
class WorkerSettings:
    """How the scoring worker batches posts and bounds its analyzers."""

    app_id: str = "bizstream-worker"
    batch_size: int = 2048
    batch_timeout_s: float = 0.25
    batch_target_s: float = 1.0
    processing_guarantee: str = "at_least_once"
    analyzer_timeout_s: float = 10.0
    commit_interval_s: float = 1.0
    session_timeout_s: float = 10.0
    producer_linger_ms: float = 5.0
    progress_every: int = 1000

    def validate(self) -> None:
        _require(bool(self.app_id.strip()), "worker.app_id must not be empty")
        _require(self.progress_every >= 0, f"worker.progress_every must be >= 0, got {self.progress_every}")
        _require(0 <= self.producer_linger_ms <= 1000, f"worker.producer_linger_ms must be in [0, 1000], got {self.producer_linger_ms}")
        _require(6.0 <= self.session_timeout_s <= 300.0, f"worker.session_timeout_s must be in [6, 300], got {self.session_timeout_s}")
        _require(self.batch_size >= 1, f"worker.batch_size must be >= 1, got {self.batch_size}")
        _require(self.batch_timeout_s > 0, f"worker.batch_timeout_s must be > 0, got {self.batch_timeout_s}")
        _require(self.batch_target_s > 0, f"worker.batch_target_s must be > 0, got {self.batch_target_s}")
        _require(self.processing_guarantee in GUARANTEES,
                 f"worker.processing_guarantee must be one of {', '.join(GUARANTEES)}, got {self.processing_guarantee!r}")  # fmt: skip
        _require(self.analyzer_timeout_s > 0, f"worker.analyzer_timeout_s must be > 0, got {self.analyzer_timeout_s}")
        _require(self.commit_interval_s > 0, f"worker.commit_interval_s must be > 0, got {self.commit_interval_s}")


GUARANTEES = ("at_least_once", "exactly_once")


@dataclass(frozen=True)
class LimitSettings:
    """Bounds on anything read from a post."""

    max_message_bytes: int = 1_048_576
    max_text_chars: int = 10_000
    max_image_bytes: int = 2_000_000
    max_image_pixels: int = 16_000_000
    image_root: str = "."  # image paths in posts must lie inside this folder
    fetch_image_urls: bool = False
    image_url_hosts: list[str] = field(default_factory=list)  # allowed hosts (and their subdomains) when fetching
    image_fetch_timeout_s: float = 5.0

    def validate(self) -> None:
        for name in ("max_message_bytes", "max_text_chars", "max_image_bytes", "max_image_pixels"):
            value = getattr(self, name)
            _require(value >= 1, f"limits.{name} must be >= 1, got {value}")
        _require(self.image_fetch_timeout_s > 0, f"limits.image_fetch_timeout_s must be > 0, got {self.image_fetch_timeout_s}")


@dataclass(frozen=True)
class FusionSettings:
    """How analyzer outputs become one Score."""

    default_weight: float = 1.0
    # The cold-start fusion. OCR reads an image's text and judges nothing (uniform probabilities): weight 0; the sarcasm
    # fuser scores what it read with its OCR weight.
    weights: dict[str, float] = field(default_factory=lambda: {"vader": 0.3, "setfit": 0.7, "ocr": 0.0})
    learned: bool = True  # the trainer's job fits a fusion on held-back labels, gated; the worker serves it
    min_labels: int = 30  # held-back (evaluation holdout) labels before a learned fusion is fitted
    registry: str = ""  # empty: <broker.cache_dir>/models/fusion

    def validate(self) -> None:
        _require(self.default_weight >= 0, f"fusion.default_weight must be >= 0, got {self.default_weight}")
        _require(self.min_labels >= 10, f"fusion.min_labels must be >= 10, got {self.min_labels}")
        for name, weight in self.weights.items():
            _require(weight >= 0, f"fusion.weights.{name} must be >= 0, got {weight}")

    def weight_of(self, analyzer: str) -> float:
        """The fusion weight of one analyzer."""
        return self.weights.get(analyzer, self.default_weight)


@dataclass(frozen=True)
class PluginSettings:
    """Which plugins run, and options passed to each (``[plugins.options.<name>]``)."""

    disabled: list[str] = field(default_factory=list)
    load: list[str] = field(default_factory=list)  # extra plugin modules, by import name
    options: dict[str, Any] = field(default_factory=dict)

    def options_for(self, plugin: str, allowed: Collection[str] | None = None) -> dict[str, Any]:
        """A copy of the option table of one plugin (empty when none is set); ConfigError names any key outside
        ``allowed`` (when given)."""
        value = self.options.get(plugin, {})
        if not isinstance(value, dict):
            raise ConfigError(f"plugins.options.{plugin} must be a table, got {value!r}")
        unknown = set(value) - set(allowed) if allowed is not None else set()
        if unknown:
            raise ConfigError(f"unknown option(s) {sorted(unknown)} in [plugins.options.{plugin}]; known: {sorted(allowed or ())}")
        return dict(value)

    def validate(self) -> None:
        for name, value in self.options.items():
            _require(isinstance(value, dict), f"plugins.options.{name} must be a table, got {value!r}")


@dataclass(frozen=True)
class StoreSettings:
    """The embedded SQLite database (training labels)."""

    path: str = ""  # empty: <broker.cache_dir>/bizstream.sqlite
    keep_scored_posts: int = 100_000  # the sink keeps the newest this many scored posts

    def validate(self) -> None:
        _require(self.keep_scored_posts >= 1, f"store.keep_scored_posts must be >= 1, got {self.keep_scored_posts}")


@dataclass(frozen=True)
class SetfitSettings:
    """The SetFit analyzer: which body to train from, where models live, how to serve them."""

    device: str = "cpu"  # where training runs: cpu, or cuda on a GPU box
    body: str = ""  # empty: the packaged all-MiniLM-L6-v2; or a folder, or a hub id in the local cache
    registry: str = ""  # empty: <broker.cache_dir>/models/setfit
    profile: str = "cpu"  # training hyper-parameters: "cpu" (1 epoch, 5 iterations) or "seed" (4 epochs, 20)
    seed: int = 42
    max_seq_length: int = 128
    runtime: str = "auto"  # auto (ONNX INT8 when exported, else torch) | torch | onnx-fp32 | onnx-int8
    batch_size: int = 16
    starter: bool = True  # serve the shipped starter model while nothing else has been promoted
    head_prior: float = 1.0  # a head refit stays this close to the starter's or the serving head (0: from scratch)
    export_onnx: bool = True  # a newly trained body is exported to INT8 ONNX before it can be promoted

    def validate(self) -> None:
        _require(self.profile in ("cpu", "seed"), f"setfit.profile must be 'cpu' or 'seed', got {self.profile!r}")
        runtimes = ("auto", "torch", "onnx-fp32", "onnx-int8")
        _require(self.runtime in runtimes, f"setfit.runtime must be one of {runtimes}, got {self.runtime!r}")
        _require(8 <= self.max_seq_length <= 512, f"setfit.max_seq_length must be in [8, 512], got {self.max_seq_length}")
        _require(self.batch_size >= 1, f"setfit.batch_size must be >= 1, got {self.batch_size}")
        _require(self.head_prior >= 0, f"setfit.head_prior must be >= 0, got {self.head_prior}")
        _require(self.device in ("cpu", "cuda"), f"setfit.device must be cpu or cuda, got {self.device!r}")


@dataclass(frozen=True)
class TrackingSettings:
    """MLflow tracking of training runs."""

    enabled: bool = True
    uri: str = ""  # empty: a file store at <broker.cache_dir>/mlruns
    log_body: bool = True  # also store the fine-tuned body (~90 MB for MiniLM) with full training runs

    def validate(self) -> None:
        """Nothing to check beyond the types."""


@dataclass(frozen=True)
class TrainerSettings:
    """The trainer agent: when to retrain, on what mix, and when a candidate may replace the serving model."""

    retrain_after: int = 200  # new labels that trigger a training job
    full_after: int = 1000  # labels since the last full fine-tune that trigger one (0: never)
    plateau_jobs: int = 3  # head refits in a row without gain that call for a full fine-tune (0: never)
    plateau_delta: float = 0.01  # "without gain": accuracy on the holdout's new labels up by no more than this
    retrain_on_drift: bool = True
    mode: str = "head"  # head: refit the head on the serving body (seconds); full: contrastive fine-tune (minutes)
    new_share: float = 0.7  # of a drift job's training weight; the rest goes to the replay buffer's examples
    replay_capacity: int = 2000
    eval_share: float = 0.2  # of labelled posts (by id): the evaluation holdout, never trained on
    gate_margin: float = 0.0  # promote when the candidate is no more than this much worse (accuracy) on both slices
    drift_replay_margin: float = 0.15  # on the earlier holdout labels, after a drift event
    pseudo_labels: bool = True
    pseudo_threshold: float = 0.95
    pseudo_max_share: float = 0.2  # of each training mix
    recent_posts: int = 20_000  # unlabelled posts kept as the pool pseudo-labels come from
    cryptobert: bool = False  # each job also LoRA-retrains CryptoBERT (where its weights are) and gates it
    keep_versions: int = 20  # per model registry, besides the serving one and rollback's; older ones deleted (0: none)

    def validate(self) -> None:
        _require(self.retrain_after >= 1, f"trainer.retrain_after must be >= 1, got {self.retrain_after}")
        _require(self.full_after >= 0, f"trainer.full_after must be >= 0, got {self.full_after}")
        _require(self.plateau_jobs == 0 or self.plateau_jobs >= 2, f"trainer.plateau_jobs must be 0 (off) or >= 2, got {self.plateau_jobs}")
        _require(0 <= self.plateau_delta < 1, f"trainer.plateau_delta must be in [0, 1), got {self.plateau_delta}")
        _require(self.mode in ("head", "full"), f"trainer.mode must be 'head' or 'full', got {self.mode!r}")
        _require(0 < self.new_share <= 1, f"trainer.new_share must be in (0, 1], got {self.new_share}")
        _require(self.replay_capacity >= 1, f"trainer.replay_capacity must be >= 1, got {self.replay_capacity}")
        _require(0 < self.eval_share < 1, f"trainer.eval_share must be in (0, 1), got {self.eval_share}")
        _require(0 <= self.gate_margin < 1, f"trainer.gate_margin must be in [0, 1), got {self.gate_margin}")
        _require(0 <= self.drift_replay_margin < 1, f"trainer.drift_replay_margin must be in [0, 1), got {self.drift_replay_margin}")
        _require(0 < self.pseudo_threshold <= 1, f"trainer.pseudo_threshold must be in (0, 1], got {self.pseudo_threshold}")
        _require(0 <= self.pseudo_max_share < 1, f"trainer.pseudo_max_share must be in [0, 1), got {self.pseudo_max_share}")
        _require(self.recent_posts >= 0, f"trainer.recent_posts must be >= 0, got {self.recent_posts}")
        _require(self.keep_versions >= 0, f"trainer.keep_versions must be >= 0, got {self.keep_versions}")


@dataclass(frozen=True)
class DriftSettings:
    """The drift monitor: ADWIN on each analyzer's live error (labels joined to earlier scores)."""

    delta: float = 0.002
    clock: int = 32  # ADWIN looks for a change every `clock` labels
    min_labels: int = 100  # no drift events before an analyzer has this many labels
    join_max_posts: int = 200_000
    join_ttl_s: float = 604_800.0  # a week

    def validate(self) -> None:
        _require(0 < self.delta < 1, f"drift.delta must be in (0, 1), got {self.delta}")
        _require(self.clock >= 1, f"drift.clock must be >= 1, got {self.clock}")
        _require(self.join_max_posts >= 1, f"drift.join_max_posts must be >= 1, got {self.join_max_posts}")
        _require(self.join_ttl_s > 0, f"drift.join_ttl_s must be > 0, got {self.join_ttl_s}")


@dataclass(frozen=True)
class TickerSettings:
    """Which coins a post is about (the worker) and the per-ticker windows (``bizstream tickers``)."""

    lexicon: str = ""  # empty: config/tickers.toml
    windows_s: list[int] = field(default_factory=lambda: [60, 3600])  # tumbling windows, by the post's time
    rolling_s: int = 86_400  # the rolling view, summed from the largest window
    spike_factor: float = 3.0  # a window is a volume spike at this many times the ticker's baseline ...
    spike_min_posts: int = 5  # ... and at least this many posts
    baseline_windows: int = 24  # the baseline: mean count of this many earlier windows of the same size
    publish_interval_s: float = 1.0  # changed windows go to bizstream.tickers.v1 at most this often

    def validate(self) -> None:
        _require(bool(self.windows_s) and all(w >= 1 for w in self.windows_s), f"tickers.windows_s must be positive seconds, got {self.windows_s}")
        _require(self.rolling_s >= max(self.windows_s), f"tickers.rolling_s must be >= the largest window, got {self.rolling_s}")
        _require(self.rolling_s % max(self.windows_s) == 0, "tickers.rolling_s must be a multiple of the largest window")
        _require(self.spike_factor > 1, f"tickers.spike_factor must be > 1, got {self.spike_factor}")
        _require(self.baseline_windows >= 1, f"tickers.baseline_windows must be >= 1, got {self.baseline_windows}")
        _require(self.publish_interval_s > 0, f"tickers.publish_interval_s must be > 0, got {self.publish_interval_s}")

    @property
    def lexicon_path(self) -> Path:
        """The lexicon file."""
        return Path(self.lexicon).expanduser() if self.lexicon else PROJECT_ROOT / "config" / "tickers.toml"


@dataclass(frozen=True)
class MetricsSettings:
    """/metrics, /healthz and /readyz on every long-running process (bizstream.metrics)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, printed at start (set one per process with BIZSTREAM_METRICS__PORT)
    stall_s: float = 30.0  # input waiting and nothing handled for this long: /healthz says unhealthy

    def validate(self) -> None:
        _require(0 <= self.port < 65536, f"metrics.port must be a TCP port (0: any free one), got {self.port}")
        _require(self.stall_s > 0, f"metrics.stall_s must be > 0, got {self.stall_s}")


@dataclass(frozen=True)
class DashboardSettings:
    """``bizstream dashboard``: a read-only web page and JSON API over the topics."""

    host: str = "127.0.0.1"  # another address exposes it beyond this machine: it has no login
    port: int = 8050
    recent_posts: int = 200  # the latest posts it keeps and shows
    history_windows: int = 120  # per ticker, the latest this many 1-minute windows for its chart

    def validate(self) -> None:
        _require(0 <= self.port < 65536, f"dashboard.port must be a TCP port (0: any free one), got {self.port}")
        _require(self.recent_posts >= 1, f"dashboard.recent_posts must be >= 1, got {self.recent_posts}")
        _require(self.history_windows >= 1, f"dashboard.history_windows must be >= 1, got {self.history_windows}")


@dataclass(frozen=True)
class RoutingSettings:
    """The cascade: cheap analyzers first; only posts they find ambiguous go on to the expensive ones."""

    cascade: bool = False
    cheap: list[str] = field(default_factory=lambda: ["vader"])
    min_confidence: float = 0.9  # a cheap analyzer at least this confident settles the post
    min_abs_score: float = 0.5  # ... and only when its |score| is at least this (a confident "neutral" is not enough)

    def validate(self) -> None:
        _require(0 <= self.min_confidence <= 1, f"routing.min_confidence must be in [0, 1], got {self.min_confidence}")
        _require(0 <= self.min_abs_score <= 1, f"routing.min_abs_score must be in [0, 1], got {self.min_abs_score}")


IMAGE_ROUTES = ("auto", "llava", "clip")


@dataclass(frozen=True)
class ImageSettings:
    """Which analyzers read a post's image: LLaVA (a GPU and its weights), or CLIP and OCR (Tesseract) on the CPU;
    "auto": LLaVA where it loads, else CLIP + OCR. ``bizstream plugins`` says which path images take and why."""

    analyzer: str = "auto"

    def validate(self) -> None:
        _require(self.analyzer in IMAGE_ROUTES, f"images.analyzer must be one of {', '.join(IMAGE_ROUTES)}, got {self.analyzer!r}")


@dataclass(frozen=True)
class Settings:
    """Every bizstream setting. Build with :func:`load_settings`."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    fusion: FusionSettings = field(default_factory=FusionSettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    setfit: SetfitSettings = field(default_factory=SetfitSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    tickers: TickerSettings = field(default_factory=TickerSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @property
    def store_path(self) -> Path:
        """The SQLite file."""
        return Path(self.store.path).expanduser() if self.store.path else self.broker.cache_path / "bizstream.sqlite"

    @property
    def setfit_registry(self) -> Path:
        """The SetFit model registry's folder."""
        return Path(self.setfit.registry).expanduser() if self.setfit.registry else self.broker.cache_path / "models" / "setfit"

    @property
    def fusion_registry(self) -> Path:
        """The learned fusion's registry folder."""
        return Path(self.fusion.registry).expanduser() if self.fusion.registry else self.broker.cache_path / "models" / "fusion"

    @property
    def cryptobert_registry(self) -> Path:
        """CryptoBERT's adapter registry: ``[plugins.options.cryptobert] registry``, or <cache>/models/cryptobert."""
        configured = str(self.plugins.options_for("cryptobert").get("registry", ""))
        return Path(configured).expanduser() if configured else self.broker.cache_path / "models" / "cryptobert"

    def validate(self) -> None:
        """Raise ConfigError on the first setting that is out of range."""
        for f in dataclasses.fields(self):
            getattr(self, f.name).validate()

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys of some sections changed, validated: ``s.replace(worker={"batch_size": 8})``."""
        merged = _as_dict(self)
        for section, values in sections.items():
            if section not in merged:
                raise ConfigError(f"unknown settings section {section!r}")
            merged[section] = {**merged[section], **values}
        return _build(merged)


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file (``path``, ``$BIZSTREAM_CONFIG`` or config/settings.toml), apply env overrides, validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = _as_dict(Settings())
    chosen = Path(path) if path is not None else Path(environ.get(ENV_PREFIX + "CONFIG", DEFAULT_CONFIG_FILE))
    if path is not None or ENV_PREFIX + "CONFIG" in environ or chosen.exists():
        _merge(raw, _read_toml(chosen), where=str(chosen))
    _merge(raw, _env_overrides(environ), where="the environment")
    return _build(raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"settings file {path} does not exist (set BIZSTREAM_CONFIG to a file that does)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        section, sep, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not sep or not key:
            # Not a settings path. One that starts like a section is a typo (BIZSTREAM_WORKER_BATCH_SIZE); anything
            # else (BIZSTREAM_FOO, another tool's variable) is none of our business and is left alone.
            near = [f.name for f in dataclasses.fields(Settings) if section.startswith(f.name)]
            rest = section[len(near[0]) :].lstrip("_") if near else ""
            if near and rest:
                guess = f"{ENV_PREFIX}{near[0].upper()}__{rest.upper()}"
                raise ConfigError(f"environment variable {name} looks like a setting but is not one; did you mean {guess}?")
            if near:
                raise ConfigError(f"environment variable {name} must look like BIZSTREAM_<SECTION>__<KEY>")
            continue
        try:
            value: Any = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        target = out.setdefault(section, {})
        # Nested tables: BIZSTREAM_FUSION__WEIGHTS__VADER=0.5
        *parents, leaf = key.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return out


def _merge(into: dict[str, Any], new: Mapping[str, Any], where: str) -> None:
    for section, values in new.items():
        if section not in into:
            known = ", ".join(sorted(into))
            raise ConfigError(f"unknown settings section [{section}] in {where} (known: {known})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] in {where} must be a table, got {values!r}")
        for key, value in values.items():
            if key not in into[section]:
                known = ", ".join(sorted(into[section]))
                raise ConfigError(f"unknown setting {section}.{key} in {where} (known: {known})")
            current = into[section][key]
            if isinstance(current, dict) and isinstance(value, Mapping):
                into[section][key] = _deep_merge(current, value)
            else:
                into[section][key] = value


def _deep_merge(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in new.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _as_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def _build(raw: Mapping[str, Any]) -> Settings:
    sections = {}
    for f in dataclasses.fields(Settings):
        cls = typing.get_type_hints(Settings)[f.name]
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in raw[f.name].items():
            values[key] = _coerce(value, hints[key], f"{f.name}.{key}")
        sections[f.name] = cls(**values)
    settings = Settings(**sections)
    settings.validate()
    return settings


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # TOML has inf and nan; no setting means either
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, list):
            return [_coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        _, item = typing.get_args(hint)
        if isinstance(value, Mapping):
            return {str(k): _coerce(v, item, f"{name}.{k}") for k, v in value.items()}
    elif hint is Any:
        return value
    expected = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{name} must be {expected}, got {value!r}")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
