"""Prompts for the video predictor and the streaming session: parsed, checked against the frame and
converted to model-input coordinates in one place."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .memory_bank import Points


def parse_points(points, labels, box, where: str) -> tuple[np.ndarray, np.ndarray]:
    """-> (P x 2 float32 pixel coords with the box corners first, P int32 labels: 1 positive,
    0 negative, 2/3 box corners). Points may carry Meta's leading batch axis of 1."""
    if (points is None) != (labels is None):
        raise ValueError(f"{where}: points and labels must be given together")
    if points is None and box is None:
        raise ValueError(f"{where}: give points with labels, or a box")
    coords = np.zeros((0, 2), np.float32)
    lab = np.zeros(0, np.int32)
    if points is not None:
        try:
            raw = np.asarray(points, dtype=np.float32)
            lab = np.asarray(labels, dtype=np.int32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: points must be N x 2 numbers with N labels ({exc})") from None
        if raw.size and (raw.shape[-1] != 2 or raw.ndim > 3 or (raw.ndim == 3 and raw.shape[0] != 1)):
            raise ValueError(f"{where}: points must be N x 2 (or 1 x N x 2), got shape {raw.shape}")
        coords = raw.reshape(-1, 2) if raw.size else coords
        if len(lab) != len(coords):
            raise ValueError(f"{where}: points must be N x 2 with N labels, got {len(coords)} points but "
                             f"{len(lab)} labels")
        if not np.isin(lab, (0, 1)).all():
            raise ValueError(f"{where}: labels must be 1 (positive) or 0 (negative)")
    if box is not None:
        b = np.asarray(box, dtype=np.float32).reshape(-1)
        if b.size != 4 or not np.isfinite(b).all():
            raise ValueError(f"{where}: box must be 4 numbers x0, y0, x1, y1, got {box!r}")
        if not (b[2] > b[0] and b[3] > b[1]):
            raise ValueError(f"{where}: box {b.tolist()} is empty (need x1 > x0 and y1 > y0)")
        coords = np.concatenate([b.reshape(2, 2), coords])
        lab = np.concatenate([np.array([2, 3], np.int32), lab])
    if not np.isfinite(coords).all():
        raise ValueError(f"{where}: coordinates must be finite")
    return coords, lab


def to_model_points(coords: np.ndarray, labels: np.ndarray, frame_wh: tuple[int, int], image_size: int,
                    device: torch.device, where: str, normalized: bool = False) -> Points:
    """Check that every point lies in the frame (or in [0, 1] when `normalized`) and map them to
    model-input pixels: x / W * S, in the reference's order of operations."""
    w, h = frame_wh
    limit = (1.0, 1.0) if normalized else (w, h)
    outside = (coords[:, 0] < 0) | (coords[:, 0] > limit[0]) | (coords[:, 1] < 0) | (coords[:, 1] > limit[1])
    if outside.any():
        raise ValueError(f"{where}: point {coords[outside][0].tolist()} is outside the {w}x{h} frame")
    xy = torch.from_numpy(coords)[None]
    if not normalized:
        xy = xy / torch.tensor([w, h])
    return Points((xy * image_size).to(device), torch.from_numpy(labels)[None].to(device))


def mask_prompt(mask, image_size: int, device: torch.device, where: str) -> torch.Tensor:
    """A binary mask of any size -> 1 x 1 x S x S float 0/1 (antialiased resize, then >= 0.5)."""
    mask = torch.as_tensor(mask if isinstance(mask, torch.Tensor) else np.asarray(mask))
    if mask.dim() != 2 or 0 in mask.shape:
        raise ValueError(f"{where}: the mask must be a non-empty 2-D array, got shape {tuple(mask.shape)}")
    m = mask.to(torch.bool)[None, None].float().to(device)
    if m.shape[-2:] != (image_size, image_size):
        m = F.interpolate(m, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        m = (m >= 0.5).float()
    return m
