"""MLflow tracking of training runs: params, metrics, and the model directory as an artifact.

On by default, to a local file store under the cache folder (``tracking.uri`` empty); off with
``tracking.enabled = false``. MLflow 3 keeps its file store in maintenance mode and refuses it unless
MLFLOW_ALLOW_FILE_STORE is set; the file store is what needs no server, so bizstream sets it for file: URIs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.settings import Settings

log = logging.getLogger(__name__)
EXPERIMENT = "bizstream-{analyzer}"  # one MLflow experiment per analyzer


def tracking_uri(settings: Settings) -> str:
    """The configured MLflow tracking URI (default: a file store in the cache folder)."""
    return settings.tracking.uri or (settings.broker.cache_path / "mlruns").resolve().as_uri()


def log_training(settings: Settings, registry: ModelRegistry, metadata: ModelMetadata) -> str | None:
    """Record one training run; returns the MLflow run id, or None when tracking is off."""
    if not settings.tracking.enabled:
        return None
    uri = tracking_uri(settings)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Experiment ... does not exist. Creating" is not news
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT.format(analyzer=metadata.analyzer))
    params = {f"param.{k}": str(v) for k, v in _flatten(metadata.params).items()}
    params.update(kind=metadata.kind, parent=str(metadata.parent), body_id=metadata.body_id,
                  body_source=metadata.body_source, data_fingerprint=metadata.data_fingerprint)  # fmt: skip
    with mlflow.start_run(run_name=metadata.version) as run:
        mlflow.set_tags({"bizstream.version": metadata.version, "bizstream.analyzer": metadata.analyzer})
        mlflow.log_params(params)
        mlflow.log_metrics(metadata.metrics)
        mlflow.log_artifacts(str(registry.version_dir(metadata.version)), artifact_path="model")
        if metadata.kind == "full" and settings.tracking.log_body:
            body: Path = registry.body_dir(metadata.body_id)
            for item in body.iterdir():
                if item.name != "embeddings.sqlite":  # a cache, not the model
                    if item.is_dir():
                        mlflow.log_artifacts(str(item), artifact_path=f"body/{item.name}")
                    else:
                        mlflow.log_artifact(str(item), artifact_path="body")
    log.debug("tracked %s as MLflow run %s at %s", metadata.version, run.info.run_id, uri)
    return str(run.info.run_id)


def _flatten(params: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
