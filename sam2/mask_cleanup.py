"""Hole filling and small-region removal on mask logits, on any device, with no compiled
extension (Meta's version needs a CUDA kernel and silently skips the step without it).

Connected components use 8-connectivity, computed with scipy on the CPU: the masks are small
(256 x 256 low-res logits), so the round trip costs far less than the decoder itself.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def component_areas(binary: torch.Tensor) -> torch.Tensor:
    """binary: ... x H x W bool -> same shape int64, the area of the 8-connected component each
    True pixel belongs to (0 for False pixels)."""
    flat = binary.detach().cpu().numpy().reshape(-1, *binary.shape[-2:])
    out = np.zeros(flat.shape, dtype=np.int64)
    for i, mask in enumerate(flat):
        labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
        if count:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            out[i] = sizes[labels]
    return torch.from_numpy(out.reshape(binary.shape)).to(binary.device)


def fill_holes(logits: torch.Tensor, max_area: float, value: float) -> torch.Tensor:
    """Background components (logit <= 0) of at most `max_area` pixels get the logit `value`."""
    areas = component_areas(logits <= 0)
    return torch.where((areas > 0) & (areas <= max_area), value, logits)


def clean_mask_logits(logits: torch.Tensor, max_hole_area: float = 0.0, max_sprinkle_area: float = 0.0,
                      threshold: float = 0.0) -> torch.Tensor:
    """Background components of at most `max_hole_area` pixels become foreground (threshold + 10);
    foreground components of at most `max_sprinkle_area` become background (threshold - 10).
    Both are found on the input logits, so filling a hole never merges specks into a region."""
    out = logits
    if max_hole_area > 0:
        areas = component_areas(logits <= threshold)
        out = torch.where((areas > 0) & (areas <= max_hole_area), threshold + 10.0, out)
    if max_sprinkle_area > 0:
        areas = component_areas(logits > threshold)
        out = torch.where((areas > 0) & (areas <= max_sprinkle_area), threshold - 10.0, out)
    return out
