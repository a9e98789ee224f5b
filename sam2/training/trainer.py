"""One readable training loop for SAM 2 on video clips, on CPU or GPU, alone or as one of several
data-parallel workers (Ray Train sets up the process group; gradients are averaged here).

Every knob is in `TrainConfig` (`sam2.training.config`). A run writes `<out>/last.pt` (model,
optimiser, step; resumable) every `checkpoint_every` steps and at the end, and appends one JSON
line of losses per `log_every` steps to `<out>/log.jsonl`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..checkpoint import load_into, read_state_dict
from ..config import load_config
from ..modeling.sam2_base import SAM2Base
from .clip_forward import forward_clip
from .config import TrainConfig
from .data import ClipSampler
from .image_forward import forward_images
from .init import align_prompt_attention
from .losses import StepLoss, step_loss


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def build_model(config: TrainConfig, device: torch.device) -> SAM2Base:
    torch.manual_seed(config.seed)
    model = SAM2Base(load_config(config.model))
    if config.init_checkpoint:
        load_into(model, read_state_dict(config.init_checkpoint, config.model), config.init_checkpoint)
    else:
        align_prompt_attention(model)
    for module in model.modules():
        if hasattr(module, "dropout_p"):
            module.dropout_p = config.dropout
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(tuple(config.freeze)))
    return model.to(device).train()


def _optimizer(model: SAM2Base, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norms; the encoder's lr scaled by `encoder_lr_scale`."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (name.startswith("image_encoder"), p.ndim <= 1 or name.endswith("bias"))
            groups.setdefault(key, []).append(p)
    return torch.optim.AdamW([
        {"params": params, "lr_scale": config.encoder_lr_scale if encoder else 1.0,
         "weight_decay": 0.0 if no_decay else config.weight_decay}
        for (encoder, no_decay), params in groups.items()
    ], lr=config.lr)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine from lr to lr_min."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1)
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * min(progress, 1.0)))


def _average_gradients(model: SAM2Base, world: int) -> None:
    """Data parallelism by hand: frames and prompts differ per worker, so some parameters (say the
    mask-prompt path) get no gradient on one worker; they count as zero in the average."""
    for p in model.parameters():
        if p.requires_grad:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= world


def _summed(pairs, config: TrainConfig) -> StepLoss:
    total = None
    for s, target in pairs:
        loss = step_loss(s.masks, s.ious, s.obj_score, target, config.loss)
        total = loss if total is None else total + loss
    return total


def clip_loss(model: SAM2Base, images: torch.Tensor, targets: torch.Tensor, config: TrainConfig,
              rng: np.random.Generator) -> StepLoss:
    """Sum of the step losses over the clip, divided by its number of objects."""
    return _summed(forward_clip(model, images, targets, config.prompts, rng), config) / targets.shape[1]


def images_loss(model: SAM2Base, sampler: ClipSampler, seed: int, config: TrainConfig,
                rng: np.random.Generator) -> StepLoss:
    """The image stage: `data.images_per_step` single frames; the mean over prompted objects."""
    count = config.data.images_per_step
    samples = [sampler.sample(seed * count + i) for i in range(count)]
    images = torch.cat([image[:1] for image, _ in samples]).to(model.device)
    targets = [target[0].to(model.device) for _, target in samples]
    pairs = forward_images(model, images, targets, rng, config.prompts)
    return _summed(pairs, config) / sum(target.shape[0] for _, target in pairs)


def stage_loss(model: SAM2Base, sampler: ClipSampler, seed: int, config: TrainConfig,
               rng: np.random.Generator) -> StepLoss:
    """One optimiser step's loss for the config's stage, on data sampled from `seed`."""
    if config.stage == "image":
        return images_loss(model, sampler, seed, config, rng)
    images, targets = sampler.sample(seed)
    return clip_loss(model, images.to(model.device), targets.to(model.device), config, rng)


def save_checkpoint(path: Path, model: SAM2Base, optimizer: torch.optim.Optimizer, step: int,
                    config: TrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "train_config": json.dumps(dataclasses.asdict(config))}, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a torn checkpoint


def train(config: TrainConfig, device: str | torch.device = "cpu", report=None) -> SAM2Base:
    """Run (or resume from `<out>/last.pt`) training; `report(metrics, checkpoint_path or None)` is
    called on every worker at each checkpoint (Ray Train's hook); returns the trained model."""
    if config.threads:
        torch.set_num_threads(config.threads)
    rank, world = _world()
    device = torch.device(device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(config, device)
    optimizer = _optimizer(model, config)
    start = 0
    last = out / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    sampler = ClipSampler(config.data, model.image_size)
    window: list[dict] = []
    window_loss = float("nan")
    tick = time.perf_counter()
    for step in range(start, config.steps):
        clip_seed = config.seed * 1_000_003 + step * world + rank  # each worker its own clips
        rng = np.random.default_rng(clip_seed)
        loss = stage_loss(model, sampler, clip_seed, config, rng)
        total = loss.total(config.loss)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if world > 1:
            _average_gradients(model, world)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        optimizer.step()
        window.append({"loss": total.item(), "mask": loss.mask.item(), "dice": loss.dice.item(),
                       "iou": loss.iou.item(), "obj_score": loss.obj_score.item()})
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            seconds = time.perf_counter() - tick
            record = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            record.update(step=done, lr=lr, clips_per_s=len(window) * world / seconds)
            if rank == 0:
                with open(out / "log.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
            window, tick = [], time.perf_counter()
            window_loss = record["loss"]
        if done % config.checkpoint_every == 0 or done == config.steps:
            if rank == 0:
                save_checkpoint(last, model, optimizer, done, config)
            if report is not None:  # every worker reports (Ray Train syncs on it); rank 0 with the file
                report({"step": done, "loss": window_loss}, last if rank == 0 else None)
    return model


def export_weights(checkpoint: str | Path, path: str | Path, half: bool = True) -> Path:
    """The shippable file: `{"model": state_dict}` only (what `build_sam2` loads), fp16 by default
    to halve its size; the loader casts back to the model's dtype."""
    state = read_state_dict(checkpoint)
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = Path(path)
    torch.save({"model": state}, path)
    return path
