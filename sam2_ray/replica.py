"""`SAM2Replica`: a Ray actor holding one tracker on the device Ray assigned it; a thin shell around
`VideoLabeler`."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import ray
import torch

from sam2.build_sam import build_sam2_video_predictor
from sam2.config import ModelConfig, load_config
from sam2.memory_bank import MemorySelection

from .labeler import VideoLabeler, VideoOutcome
from .masklet_store import MaskletStore
from .prompt_free import AutoSpec
from .records import VideoJob
from .trackers import SAM2Tracker, VideoTracker, load_factory


@dataclass(frozen=True)
class ModelSpec:
    """Which model a replica loads: a config (name, YAML path or ModelConfig) and a checkpoint path
    ("bundled": the weights the package ships for the config); without one the weights are random,
    seeded by `seed`."""

    config: str | ModelConfig = "sam2.1_hiera_t"
    checkpoint: str | None = None
    seed: int = 0
    tracker: str | None = None  # "package.module:factory", factory(spec, device) -> VideoTracker; default SAM2Tracker
    memory_selection: str = "recent"  # SAM2Tracker: "recent" (SAM 2) or "quality" (see sam2.memory_bank)
    memory_window: int = 16  # "quality": how many recent frames it chooses from
    auto: AutoSpec = AutoSpec()  # SAM2Tracker: prompt-free labelling (the pipeline YAML's `auto` section)

    def __post_init__(self) -> None:
        self.selection  # noqa: B018  (a bad value is a ValueError where the settings are read)

    @property
    def selection(self) -> MemorySelection:
        return MemorySelection(self.memory_selection, self.memory_window)

    @property
    def name(self) -> str:
        return load_config(self.config).name

    def build(self, device: str):
        if self.checkpoint is None:
            torch.manual_seed(self.seed)
        return build_sam2_video_predictor(self.config, self.checkpoint, device=device)

    def build_tracker(self, device: str) -> VideoTracker:
        if self.tracker is None:
            return SAM2Tracker(self.build(device), self.name, self.auto, memory_selection=self.selection)
        return load_factory(self.tracker)(self, device)


def assigned_device() -> str:
    """Ray sets CUDA_VISIBLE_DEVICES to this actor's GPUs, so its first GPU is always cuda:0."""
    gpu_ids = ray.get_gpu_ids() if ray.is_initialized() else []
    return "cuda:0" if gpu_ids and torch.cuda.is_available() else "cpu"


class SAM2Replica:
    def __init__(self, spec: ModelSpec, store_root: str) -> None:
        self.device = assigned_device()
        self.labeler = VideoLabeler(spec.build_tracker(self.device))
        self.store = MaskletStore(store_root)

    def label(self, job: VideoJob) -> VideoOutcome:
        outcome = self.labeler.label(job, self.store)
        return replace(outcome, node_id=ray.get_runtime_context().get_node_id())

    def info(self) -> dict:
        context = ray.get_runtime_context()
        return {"pid": os.getpid(), "node_id": context.get_node_id(), "device": self.device,
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
