"""Greedy NMS with torchvision's CPU-kernel arithmetic, in plain torch.

IoU is `inter / (area_i + area_j - inter)` with areas `(x1 - x0) * (y1 - y0)` (no +1), a box
is suppressed when its IoU with a kept, higher-scoring box is strictly greater than the
threshold, and kept indices come back in decreasing score order.
"""

import torch
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    """(N, 4) xyxy -> (N,) areas."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """(N, 4) xyxy boxes, (N,) scores -> int64 indices of kept boxes, best first."""
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    areas = box_area(b)
    suppressed = torch.zeros(len(b), dtype=torch.bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = b[i + 1 :]
        w = (torch.minimum(b[i, 2], rest[:, 2]) - torch.maximum(b[i, 0], rest[:, 0])).clamp(min=0)
        h = (torch.minimum(b[i, 3], rest[:, 3]) - torch.maximum(b[i, 1], rest[:, 1])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[i + 1 :] - inter)
        suppressed[i + 1 :] |= iou > iou_threshold
    return order[torch.tensor(keep, dtype=torch.int64)]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS run independently per category `idxs`; result sorted by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    keep = torch.cat(
        [
            torch.nonzero(idxs == c).flatten()[
                nms(boxes[idxs == c], scores[idxs == c], iou_threshold)
            ]
            for c in torch.unique(idxs)
        ]
    )
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]
