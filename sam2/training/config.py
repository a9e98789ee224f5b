"""Every training knob in one config object, read from YAML (`configs/training/`)."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.synthetic import ClipSpec
from .clip_forward import PromptSettings
from .data import DataSettings
from .losses import LossWeights


@dataclass(frozen=True)
class TrainConfig:
    model: str = "sam2.1_hiera_mini"  # a config name or YAML path
    init_checkpoint: str | None = None  # fine-tune from these weights (official ones, or "bundled")
    out: str = "outputs/train"
    stage: str = "video"  # "image": single frames, every object boxed and clicked (training from scratch starts so)
    steps: int = 1000  # optimiser steps; each sees one clip (video) or data.images_per_step frames (image) per worker
    lr: float = 5e-4
    lr_min: float = 5e-6  # cosine decay down to this
    encoder_lr_scale: float = 1.0  # the image encoder's learning rate relative to the rest
    warmup_steps: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0  # L2 norm
    dropout: float = 0.0  # memory attention dropout (0.1 in the reference; synthetic data is endless)
    freeze: tuple[str, ...] = ()  # parameter name prefixes kept fixed, e.g. ("image_encoder",)
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0 = torch's default
    log_every: int = 10
    checkpoint_every: int = 200
    data: DataSettings = field(default_factory=DataSettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    loss: LossWeights = field(default_factory=LossWeights)


def _build(cls, values: dict, where: str):
    """A (nested) frozen dataclass from a YAML mapping; unknown keys are an error, not ignored."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    kwargs = {}
    for key, value in values.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            value = _build(kind, value or {}, f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def load_train_config(path: str | Path, **overrides) -> TrainConfig:
    """YAML file -> TrainConfig; keyword overrides (e.g. out=..., steps=...) win over the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"training config not found: {path}")
    values = yaml.safe_load(path.read_text()) or {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = _build(TrainConfig, values, str(path))
    if config.stage not in ("image", "video"):
        raise ValueError(f"{path}: stage must be 'image' or 'video', not {config.stage!r}")
    grid_frames = config.prompts.grid_frames
    if grid_frames not in ("conditioning", "all"):
        raise ValueError(f"{path}: prompts.grid_frames must be 'conditioning' or 'all', not {grid_frames!r}")
    return config


__all__ = ["ClipSpec", "DataSettings", "LossWeights", "PromptSettings", "TrainConfig", "load_train_config"]
