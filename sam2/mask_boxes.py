"""Boxes of thresholded masks and non-maximum suppression, in plain PyTorch (no torchvision, no
compiled kernel), on any device.

Boxes are xyxy with inclusive pixel indices, as SAM's automatic mask generator makes them: a
mask covering columns 3..7 has x0 = 3, x1 = 7; an empty mask gets (0, 0, 0, 0). Box arithmetic
follows torchvision's NMS exactly (areas `(x1 - x0) * (y1 - y0)`, IoU `inter / (a + b - inter)`
in float32, suppression when IoU is strictly above the threshold), so that the same boxes and
scores keep the same boxes.
"""

from __future__ import annotations

import numpy as np
import torch


def masks_to_boxes(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boxes of the masks `logits > threshold`: N x H x W -> N x 4 int64 xyxy, inclusive max
    indices; zeros for empty masks. A row holds mask pixels exactly when its largest logit is
    above the threshold, so the binary masks are never built."""
    n, h, w = logits.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.int64, device=logits.device)
    rows = logits.amax(dim=2) > threshold  # N x H
    cols = logits.amax(dim=1) > threshold  # N x W

    def first_last(hit: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        # argmax returns the first maximal index: the first True, and on the flipped axis the last.
        first = hit.to(torch.uint8).argmax(dim=1)
        last = size - 1 - hit.flip(1).to(torch.uint8).argmax(dim=1)
        return first, last

    x0, x1 = first_last(cols, w)
    y0, y1 = first_last(rows, h)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where(rows.any(dim=1, keepdim=True), boxes, 0)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """N x 4 xyxy -> N areas `(x1 - x0) * (y1 - y0)`, in the boxes' dtype."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes: torch.Tensor) -> torch.Tensor:
    """N x 4 xyxy float32 -> N x N IoU of every pair (NaN for two empty boxes: never above a threshold)."""
    area = box_area(boxes)
    w = (torch.minimum(boxes[:, None, 2], boxes[None, :, 2]) - torch.maximum(boxes[:, None, 0], boxes[None, :, 0]))
    h = (torch.minimum(boxes[:, None, 3], boxes[None, :, 3]) - torch.maximum(boxes[:, None, 1], boxes[None, :, 1]))
    inter = w.clamp(min=0) * h.clamp(min=0)
    return inter / (area[:, None] + area[None, :] - inter)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS run separately within each category `idxs`.

    boxes: N x 4 xyxy; scores: N; idxs: N integer categories -> int64 indices of the kept boxes,
    in decreasing score order (equal scores: input order). A box is dropped when its IoU with a
    kept box of its category and higher rank is above `iou_threshold`.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    ranked = boxes[order].float()
    same = idxs[order][:, None] == idxs[order][None, :]
    # Row i: the lower-ranked boxes that box i suppresses if it is kept.
    suppresses = ((box_iou(ranked) > iou_threshold) & same).triu(diagonal=1).cpu().numpy()
    dropped = np.zeros(n, dtype=bool)
    kept = []
    for i in range(n):  # the greedy pass is inherently sequential; a row of booleans per kept box
        if not dropped[i]:
            kept.append(i)
            dropped |= suppresses[i]
    return order[torch.as_tensor(kept, dtype=torch.int64, device=boxes.device)]
