"""`sam2-ray train`: train or fine-tune SAM 2 from a YAML config, in this process or on Ray Train
workers, and export a shippable checkpoint."""

from __future__ import annotations

from pathlib import Path

from pipelines.errors import InvalidInput, check_checkpoint

# Inside the installed package, not the current folder (as pipelines.settings' and serve's defaults).
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "training" / "mini.yaml"


def run_training(config: str | Path, out: str | None = None, steps: int | None = None, workers: int = 0,
                 use_gpu: bool = False, address: str | None = None, init_checkpoint: str | None = None,
                 max_failures: int = 2) -> Path:
    """workers = 0 trains in this process (CUDA when present); workers >= 1 uses Ray Train with that
    many data-parallel workers, restarted from the last checkpoint when one dies (at most `max_failures`
    times). Returns the checkpoint file (`<out>/last.pt`)."""
    import torch

    from sam2.training.config import load_train_config

    try:
        train_config = load_train_config(config, out=out, steps=steps, init_checkpoint=init_checkpoint)
    except (ValueError, TypeError) as error:
        raise InvalidInput(str(error)) from None
    if train_config.init_checkpoint:
        check_checkpoint(train_config.init_checkpoint, train_config.model)
    if train_config.data.source != "synthetic" and not (Path(train_config.data.source) / "JPEGImages").is_dir():
        raise InvalidInput(f"data.source {train_config.data.source!r} is neither 'synthetic' nor a DAVIS-style "
                           "folder (JPEGImages/ and Annotations/ inside)")
    if workers:
        from sam2_ray.cluster import connect
        from sam2_ray.train import train_on_ray

        connect(address)
        return train_on_ray(train_config, num_workers=workers, use_gpu=use_gpu, max_failures=max_failures)
    from sam2.training.trainer import train

    train(train_config, device="cuda" if torch.cuda.is_available() else "cpu")
    return Path(train_config.out) / "last.pt"


def export(checkpoint: str | Path, path: str | Path) -> Path:
    from sam2.training.trainer import export_weights

    check_checkpoint(checkpoint, None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        return export_weights(checkpoint, path)
    except ValueError as error:  # a damaged archive, or a file of something other than tensors
        raise InvalidInput(str(error)) from None
