"""Prompt simulation for training (sam2_facts §6): what an annotator would have given.

Coordinates are model-input pixels (x, y); a box is two corner points with labels 2 and 3, as the
prompt encoder expects.
"""

from __future__ import annotations

import numpy as np
import torch


def noisy_box(mask: torch.Tensor, rng: np.random.Generator, jitter: float = 0.1, max_px: float = 20.0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """mask: B x H x W bool -> (B x 2 x 2 corners, B x 2 labels): the mask's box with each corner
    moved by up to `jitter` of the box side (capped at max_px), kept inside the image."""
    b, h, w = mask.shape
    corners = torch.zeros(b, 2, 2)
    for i in range(b):
        ys, xs = torch.nonzero(mask[i], as_tuple=True)
        if len(xs) == 0:  # absent object: a box on nothing is still a box
            x0, y0, x1, y1 = 0.0, 0.0, float(w), float(h)
        else:
            x0, x1, y0, y1 = xs.min().item(), xs.max().item() + 1.0, ys.min().item(), ys.max().item() + 1.0
        nx, ny = min(jitter * (x1 - x0), max_px), min(jitter * (y1 - y0), max_px)
        dx, dy = rng.uniform(-nx, nx, 2), rng.uniform(-ny, ny, 2)
        corners[i] = torch.tensor([[np.clip(x0 + dx[0], 0, w), np.clip(y0 + dy[0], 0, h)],
                                   [np.clip(x1 + dx[1], 0, w), np.clip(y1 + dy[1], 0, h)]])
    return corners.to(mask.device), torch.tensor([[2, 3]] * b, dtype=torch.int32, device=mask.device)


def error_click(target: torch.Tensor, pred: torch.Tensor | None, rng: np.random.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per object, uniform over its error region: false negatives give a positive click,
    false positives a negative one. Without a prediction the error region is the whole object.
    target, pred: B x H x W bool -> (B x 1 x 2 points, B x 1 labels)."""
    b = target.shape[0]
    points = torch.zeros(b, 1, 2)
    labels = torch.zeros(b, 1, dtype=torch.int32)
    for i in range(b):
        fn = target[i] if pred is None else target[i] & ~pred[i]
        fp = torch.zeros_like(fn) if pred is None else pred[i] & ~target[i]
        error = fn | fp
        if not error.any():  # a perfect mask still gets a click: a negative on the background
            error = ~target[i] if (~target[i]).any() else target[i]
        ys, xs = torch.nonzero(error, as_tuple=True)
        k = int(rng.integers(len(xs)))
        y, x = ys[k].item(), xs[k].item()
        points[i, 0] = torch.tensor([x + 0.5, y + 0.5])
        labels[i, 0] = int(bool(target[i, y, x]))
    return points.to(target.device), labels.to(target.device)


def grid_clicks(target: torch.Tensor, per_side: int, at_most: int, rng: np.random.Generator
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The automatic mask generator's prompts: single positive clicks on a per_side x per_side grid
    over the image, each moved uniformly within its cell (the generator clicks cell centres). A click
    on an annotated object asks for that object; targets are visible parts, so that is the topmost
    one there. Of the clicks on objects `at_most` are kept, picked at random; clicks on no object are
    not supervised (unannotated look-alikes and occluders lie there in generated clips).
    target: B x H x W bool -> (P x 1 x 2 points, P x 1 labels, P indices of the clicked objects)."""
    h, w = target.shape[1:]
    cells = np.stack(np.meshgrid(np.arange(per_side), np.arange(per_side)), -1).reshape(-1, 2)  # (col, row)
    xy = (cells + rng.random(cells.shape)) * np.array([w, h]) / per_side
    col, row = np.minimum(xy.astype(int), [w - 1, h - 1]).T
    hit = target[:, torch.from_numpy(row), torch.from_numpy(col)].cpu().numpy()  # B x per_side^2
    on = rng.permutation(np.flatnonzero(hit.any(0)))[:at_most]
    points = torch.from_numpy(xy[on]).float()[:, None].to(target.device)
    return (points, torch.ones(len(on), 1, dtype=torch.int32, device=target.device),
            torch.from_numpy(hit[:, on].argmax(0)).to(target.device))
