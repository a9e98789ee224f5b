"""Training on Ray Train: `TorchTrainer` runs the plain training loop (`sam2.training.trainer`) on
data-parallel workers, one per GPU (or CPU workers), and keeps its checkpoints in Ray's storage: when a worker dies
the group restarts from the last one (up to `max_failures` times), and so does a run started again."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import ray.train
from ray.train import Checkpoint, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer, get_device

from sam2.training.config import TrainConfig
from sam2.training.trainer import train

CHECKPOINT_FILE = "last.pt"


def _worker_loop(config: dict) -> None:
    train_config: TrainConfig = config["train_config"]
    out = Path(train_config.out)
    out.mkdir(parents=True, exist_ok=True)
    restored = ray.train.get_checkpoint()
    if restored is not None:  # resume from Ray's copy (e.g. after a node was lost)
        # Every worker puts it in place itself, whole and then renamed: a worker that reads `last.pt` while
        # another copies it (workers start at different times on a loaded machine) never sees a torn file.
        rank = ray.train.get_context().get_world_rank()
        with restored.as_directory() as folder:
            tmp = out / f"{CHECKPOINT_FILE}.rank{rank}.tmp"
            shutil.copy(Path(folder) / CHECKPOINT_FILE, tmp)
            os.replace(tmp, out / CHECKPOINT_FILE)

    def report(metrics: dict, checkpoint: Path | None) -> None:
        if checkpoint is None:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            shutil.copy(checkpoint, Path(folder) / CHECKPOINT_FILE)
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(folder))

    train(train_config, device=get_device(), report=report)


def train_on_ray(config: TrainConfig, num_workers: int = 1, use_gpu: bool = False, cpus_per_worker: float = 1,
                 storage: str | None = None, max_failures: int = 2) -> Path:
    """Train with `num_workers` data-parallel workers (each sees its own clips; gradients are
    averaged, so the effective batch is `num_workers` clips). A lost worker (a node gone, a process
    killed) restarts the group from the last checkpoint, at most `max_failures` times per run.
    Returns the final checkpoint file."""
    storage = str(Path(storage or Path(config.out) / "ray").resolve())
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"train_config": config},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker}),
        run_config=RunConfig(name=Path(config.out).name, storage_path=storage,
                             failure_config=FailureConfig(max_failures=max_failures)),
    )
    result = trainer.fit()
    if result.error is not None:
        raise RuntimeError(f"training failed: {result.error}") from result.error
    with result.checkpoint.as_directory() as folder:
        final = Path(config.out) / CHECKPOINT_FILE
        if Path(folder).resolve() != final.parent.resolve():
            shutil.copy(Path(folder) / CHECKPOINT_FILE, final)
    return final
