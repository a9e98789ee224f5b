"""The training forward pass of the image stage: single frames, every object prompted twice.

Training from scratch starts here (configs/training/mini_image.yaml) before clips go through the
memory: a frame costs one encoder pass, and every object on it gives two supervised predictions in
two decoder passes (a noisy box with one mask out; one click with three), so the decoder sees many
prompts per encoder pass while it learns to follow them.

With `prompts.grid_points`, a third decoder pass gives the automatic mask generator's prompts: single
clicks on a jittered grid, each supervised by the object it falls on, three masks out (`grid_step`, which
the video stage shares; configs/training/mini_points.yaml puts them in clips).
"""

from __future__ import annotations

import numpy as np
import torch

from ..modeling import tracking
from ..modeling.sam2_base import SAM2Base
from .clip_forward import PromptSettings, Step, grid_step, step_from_head, training_features
from .prompts import error_click, noisy_box


def forward_images(model: SAM2Base, images: torch.Tensor, targets: list[torch.Tensor],
                   rng: np.random.Generator, settings: PromptSettings | None = None
                   ) -> list[tuple[Step, torch.Tensor]]:
    """images: N x 3 x S x S normalised; targets[i]: B_i x S x S bool, objects visible on image i
    -> (prediction step, its P x 1 x S x S target) per image and prompt kind: P = B_i for the box and
    the click, the number of grid clicks for the grid."""
    settings = settings or PromptSettings()
    feats = training_features(model, images)
    steps = []
    for i, target in enumerate(targets):
        b = target.shape[0]
        vision = tracking.no_memory_features(model, feats.vision[i : i + 1].expand(b, -1, -1, -1))
        high_res = [level[i : i + 1].expand(b, -1, -1, -1) for level in feats.high_res]
        for points, multimask in ((noisy_box(target, rng), False), (error_click(target, None, rng), True)):
            head = tracking.sam_heads(model, vision, high_res, points, None, multimask=multimask)
            steps.append((step_from_head(model, i, head), target[:, None]))
        if settings.grid_points and (grid := grid_step(model, i, vision, high_res, target, settings, rng)):
            steps.append(grid)
    return steps
