"""`sam2-ray autolabel`: a manifest of videos and prompts -> masklets in the store, on a local Ray
(default) or an existing cluster (`--address`)."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import yaml

from pipelines.errors import InvalidInput
from pipelines.manifest import read_manifest
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.replica import ModelSpec
from sam2_ray.scheduler import JobSummary, PoolConfig, Scheduler

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pipelines" / "autolabel.yaml"


def _section(cls, values: dict | None, where: str):
    values = values or {}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    return cls(**values)


def load_settings(path: str | Path) -> tuple[ModelSpec, PoolConfig, str]:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"config not found: {path}")
    settings = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(settings) - {"model", "pool", "store"})
    if unknown:
        raise InvalidInput(f"{path}: unknown sections {unknown}")
    model = _section(ModelSpec, settings.get("model"), f"{path} model")
    if model.checkpoint is not None and not Path(model.checkpoint).is_file():
        raise InvalidInput(f"{path}: checkpoint not found: {model.checkpoint}")
    return model, _section(PoolConfig, settings.get("pool"), f"{path} pool"), settings.get("store", "outputs/masklets")


def connect(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level="ERROR")
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)


def autolabel(manifest: str | Path, config: str | Path = DEFAULT_CONFIG, store: str | Path | None = None,
              address: str | None = None, replicas: int | None = None, progress: bool = True) -> JobSummary:
    model, pool, default_store = load_settings(config)
    if replicas is not None:
        pool = PoolConfig(replicas, pool.num_gpus, pool.num_cpus, pool.max_attempts)
    jobs, rejected = read_manifest(manifest)
    connect(address)
    scheduler = Scheduler(model, MaskletStore(store or default_store), pool)
    try:
        summary = scheduler.run(jobs, progress=progress)
    finally:
        scheduler.shutdown()
    summary.outcomes += rejected
    return summary
