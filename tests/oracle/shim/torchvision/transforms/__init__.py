"""`ToTensor`, `Resize`, `Normalize` as the reference's SAM2Transforms uses them.

`Resize` and `Normalize` must stay TorchScript-compatible: the reference wraps them in
`torch.jit.script(nn.Sequential(...))`.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ToTensor:
    """HWC (or HW) array / PIL image -> CHW tensor; uint8 is scaled to float [0, 1]."""

    def __call__(self, pic) -> Tensor:
        arr = np.asarray(pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        img = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).contiguous()
        if img.dtype == torch.uint8:
            return img.to(torch.get_default_dtype()).div(255)
        return img


class Resize(nn.Module):
    """Tensor resize to a fixed (h, w): bilinear, align_corners=False, antialias=True.

    That is torchvision's tensor path since 0.17; an image already at the target size is
    returned untouched, as torchvision does.
    """

    def __init__(self, size: list[int]) -> None:
        super().__init__()
        self.size: list[int] = [int(s) for s in size]

    def forward(self, img: Tensor) -> Tensor:
        if img.shape[-2] == self.size[0] and img.shape[-1] == self.size[1]:
            return img
        batched = img.dim() == 4
        x = img if batched else img.unsqueeze(0)
        out = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return out if batched else out.squeeze(0)


class Normalize(nn.Module):
    """Per-channel (x - mean) / std, subtract then divide, as torchvision does (not in place)."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.mean: list[float] = [float(m) for m in mean]
        self.std: list[float] = [float(s) for s in std]

    def forward(self, tensor: Tensor) -> Tensor:
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        return tensor.sub(mean).div(std)
