"""The SAM 2 training losses (sam2_facts §6), named as in the paper.

Every prediction step (the initial prompt and each correction click) on every frame is
supervised: focal and dice on the mask, L1 on the predicted IoU, and binary cross-entropy on the
object score. With several candidate masks only the one with the lowest 20·focal + dice is
supervised; mask, dice and IoU terms vanish for objects absent from the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    mask: float = 20.0  # sigmoid focal
    dice: float = 1.0
    iou: float = 1.0
    obj_score: float = 1.0


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """B x K x H x W logits, B x 1 x H x W 0/1 target -> B x K (mean over pixels)."""
    target = target.expand_as(logits)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """B x K x H x W logits, B x 1 x H x W target -> B x K."""
    prob = logits.sigmoid().flatten(2)
    target = target.expand_as(logits).flatten(2)
    return 1 - (2 * (prob * target).sum(-1) + 1) / (prob.sum(-1) + target.sum(-1) + 1)


def actual_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the binarised prediction with the target: B x K (1 when both are empty)."""
    pred = (logits > 0).flatten(2)
    target = target.expand_as(logits).flatten(2) > 0
    inter = (pred & target).sum(-1).float()
    union = (pred | target).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@dataclass
class StepLoss:
    """Each term summed over objects (divide by the object count for the mean)."""

    mask: torch.Tensor
    dice: torch.Tensor
    iou: torch.Tensor
    obj_score: torch.Tensor

    def total(self, w: LossWeights) -> torch.Tensor:
        return w.mask * self.mask + w.dice * self.dice + w.iou * self.iou + w.obj_score * self.obj_score

    def __truediv__(self, n: float) -> StepLoss:
        return StepLoss(self.mask / n, self.dice / n, self.iou / n, self.obj_score / n)

    def __add__(self, other: StepLoss) -> StepLoss:
        return StepLoss(self.mask + other.mask, self.dice + other.dice, self.iou + other.iou,
                        self.obj_score + other.obj_score)


def step_loss(masks: torch.Tensor, ious: torch.Tensor, obj_score: torch.Tensor, target: torch.Tensor,
              weights: LossWeights) -> StepLoss:
    """masks: B x K x H x W logits at the target's size; ious: B x K; obj_score: B x 1 logits;
    target: B x 1 x H x W 0/1."""
    target = target.float()
    present = (target.flatten(1).sum(-1) > 0).float()  # B
    focal, dice = focal_loss(masks, target), dice_loss(masks, target)
    best = torch.argmin(weights.mask * focal + weights.dice * dice, dim=1)  # B
    rows = torch.arange(masks.shape[0], device=masks.device)
    iou_l1 = (ious - actual_iou(masks.detach(), target)).abs().mean(-1)  # every candidate's IoU is supervised
    score = F.binary_cross_entropy_with_logits(obj_score[:, 0], present, reduction="none")
    return StepLoss((focal[rows, best] * present).sum(), (dice[rows, best] * present).sum(),
                    (iou_l1 * present).sum(), score.sum())
