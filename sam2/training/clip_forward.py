"""The training forward pass over one clip: simulated prompts on conditioning frames, tracking
through the memory on the others, and correction clicks, with every prediction step kept for the
loss (sam2_facts §6). It reuses the inference computations of `sam2.modeling.tracking`, so what is
trained is exactly what runs at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..memory_bank import FrameOutput, ObjectMemory
from ..modeling import tracking
from ..modeling.sam2_base import SAM2Base
from .prompts import error_click, grid_clicks, noisy_box


@dataclass(frozen=True)
class PromptSettings:
    prob_clicks: float = 0.5  # prompts are clicks or a box; otherwise the mask itself
    prob_box: float = 0.5  # given clicks: a noisy box rather than one click
    max_init_cond_frames: int = 2  # frame 0 plus possibly another prompted frame
    max_correction_frames: int = 2  # frames that receive correction clicks (then conditioning)
    correction_clicks: int = 7  # per corrected frame
    # Single clicks on a jittered n x n grid, as the automatic mask generator gives them, three masks out
    # (0: none; grid_clicks in prompts.py): on every image of the image stage, on a clip's `grid_frames`
    # (with no memory, as the generator sees a keyframe; never written to the memory)
    grid_points: int = 0
    grid_clicks: int = 16  # per frame, at most, picked among the grid's clicks on objects
    grid_frames: str = "conditioning"  # in a clip: "conditioning" frames or "all" (each with no memory)


@dataclass
class Step:
    """One supervised prediction: frame index, all candidate masks (B x K x S x S logits at the
    input size), their predicted IoUs (B x K) and the object score (B x 1 logits)."""

    frame: int
    masks: torch.Tensor
    ious: torch.Tensor
    obj_score: torch.Tensor


def training_features(model: SAM2Base, images: torch.Tensor):
    """The images' features, with no autograd graph when the image encoder is frozen (nothing to train there)."""
    encoder_trains = any(p.requires_grad for p in model.image_encoder.parameters())
    with torch.set_grad_enabled(encoder_trains and torch.is_grad_enabled()):
        return model.image_features(images)


def step_from_head(model: SAM2Base, frame: int, head: tracking.HeadOutput) -> Step:
    size = (model.image_size, model.image_size)
    masks = F.interpolate(head.all_low_res, size=size, mode="bilinear", align_corners=False)
    return Step(frame, masks, head.all_ious, head.obj_score)


def grid_step(model: SAM2Base, frame: int, pix: torch.Tensor, high_res: list[torch.Tensor], target: torch.Tensor,
              settings: PromptSettings, rng: np.random.Generator) -> tuple[Step, torch.Tensor] | None:
    """The generator's prompts on one frame: pix (with no memory) and high_res of any batch size, target
    B x S x S bool -> (the step, its P x 1 x S x S target), or None when no grid click lands on an object."""
    points, labels, owner = grid_clicks(target, settings.grid_points, settings.grid_clicks, rng)
    if not len(owner):
        return None
    def rows(x: torch.Tensor) -> torch.Tensor:
        return x[:1].expand(len(owner), -1, -1, -1)

    head = tracking.sam_heads(model, rows(pix), [rows(h) for h in high_res], (points, labels), None, multimask=True)
    return step_from_head(model, frame, head), target[owner][:, None]


def _plan(num_frames: int, settings: PromptSettings, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """-> (initial conditioning frames, frames that get correction clicks)."""
    others = list(range(1, num_frames))
    num_init = min(int(rng.integers(1, settings.max_init_cond_frames + 1)), num_frames)
    init = [0] + sorted(rng.choice(others, num_init - 1, replace=False).tolist())
    num_correct = max(num_init, int(rng.integers(num_init, max(settings.max_correction_frames, num_init) + 1)))
    rest = [t for t in others if t not in init]
    extra = sorted(rng.choice(rest, min(num_correct - num_init, len(rest)), replace=False).tolist())
    return init, init + extra


def forward_clip(model: SAM2Base, images: torch.Tensor, targets: torch.Tensor, settings: PromptSettings,
                 rng: np.random.Generator) -> list[tuple[Step, torch.Tensor]]:
    """images: T x 3 x S x S normalised; targets: T x B x S x S bool (B objects, all present on
    frame 0) -> (prediction step, its target: rows x 1 x S x S) in processing order: conditioning
    frames first, then the others in time order."""
    num_frames, num_objects = targets.shape[:2]
    feats = training_features(model, images)
    init, corrected = _plan(num_frames, settings, rng)
    use_mask_prompt = rng.random() >= settings.prob_clicks
    max_ptrs = tracking.max_pointer_count(model, num_frames)
    memory = ObjectMemory()
    steps: list[tuple[Step, torch.Tensor]] = []
    for t in init + [t for t in range(num_frames) if t not in init]:
        vision = feats.vision[t : t + 1].expand(num_objects, -1, -1, -1)
        high_res = [level[t : t + 1].expand(num_objects, -1, -1, -1) for level in feats.high_res]
        target = targets[t]
        points = None
        if t in init:
            pix = tracking.no_memory_features(model, vision)
            if use_mask_prompt:
                head = tracking.mask_as_output(model, pix, high_res, target[:, None])
            else:
                if rng.random() < settings.prob_box:
                    points = noisy_box(target, rng)
                else:
                    points = error_click(target, None, rng)
                head = tracking.sam_heads(model, pix, high_res, points, None, multimask=points[1].shape[1] <= 1)
                steps.append((step_from_head(model, t, head), target[:, None]))
        else:
            spatial, pointers = memory.select(t, False, model.config.num_maskmem, max_ptrs, num_frames)
            split = [[(slot, out.maskmem[b : b + 1]) for slot, out in spatial] for b in range(num_objects)]
            ptrs = [[(offset, out.obj_ptr[b : b + 1]) for offset, out in pointers] for b in range(num_objects)]
            mem, mem_pos, num_ptr = tracking.assemble_memory(model, split, ptrs, max_ptrs)
            pix = tracking.condition_on_memory(model, vision, feats.vision_pos[t : t + 1].expand_as(vision),
                                               mem, mem_pos, num_ptr)
            head = tracking.sam_heads(model, pix, high_res, None, None, multimask=True)
            steps.append((step_from_head(model, t, head), target[:, None]))
        if t in corrected and not (use_mask_prompt and t in init):
            for _ in range(settings.correction_clicks):
                click = error_click(target, head.high_res[:, 0].detach() > 0, rng)
                points = click if points is None else (torch.cat([points[0], click[0]], 1),
                                                       torch.cat([points[1], click[1]], 1))
                head = tracking.sam_heads(model, pix, high_res, points, head.low_res.detach().clamp(-32.0, 32.0),
                                            multimask=False)
                steps.append((step_from_head(model, t, head), target[:, None]))
        if settings.grid_points and (t in init or settings.grid_frames == "all"):
            no_memory = pix if t in init else tracking.no_memory_features(model, vision[:1])
            if grid := grid_step(model, t, no_memory, high_res, target, settings, rng):
                steps.append(grid)
        maskmem = tracking.encode_memory(model, vision, head.high_res, head.obj_score, binarize=False)
        out = FrameOutput(None, head.obj_ptr, head.obj_score, head.iou, maskmem)
        (memory.cond if t in corrected else memory.non_cond)[t] = out
    return steps
