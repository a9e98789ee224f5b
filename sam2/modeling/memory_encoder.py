"""Memory encoder: fuses a frame's stride-16 features with its predicted mask into a compact
memory (mem_dim channels) that later frames attend to."""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d
from .position_encoding import SinePositionEncoding


class MaskDownSampler(nn.Module):
    """Repeated stride-2 conv + LayerNorm2d + GELU until the total stride, then a 1x1 conv."""

    def __init__(self, embed_dim: int = 256, kernel_size: int = 3, stride: int = 2, padding: int = 1,
                 total_stride: int = 16) -> None:
        super().__init__()
        num_layers = int(math.log2(total_stride) // math.log2(stride))
        layers: list[nn.Module] = []
        channels = 1
        for _ in range(num_layers):
            out = channels * stride**2
            layers += [nn.Conv2d(channels, out, kernel_size, stride, padding), LayerNorm2d(out), nn.GELU()]
            channels = out
        layers.append(nn.Conv2d(channels, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depth-wise 7x7, LayerNorm2d, pointwise MLP x4, layer scale, residual."""

    def __init__(self, dim: int, kernel_size: int = 7, padding: int = 3, layer_scale_init_value: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=padding, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, in_dim: int = 256, out_dim: int = 64, fuser_layers: int = 2, total_stride: int = 16) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim, total_stride=total_stride)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim, fuser_layers)
        self.position_encoding = SinePositionEncoding(out_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, pix_feat: torch.Tensor, masks: torch.Tensor, skip_mask_sigmoid: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """pix_feat: B x C x h x w raw stride-16 features; masks: B x 1 x 16h x 16w.
        -> memory B x mem_dim x h x w and its sine PE (same shape)."""
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(masks)
        x = self.out_proj(self.fuser(x))
        return x, self.position_encoding(x).to(x.dtype)
