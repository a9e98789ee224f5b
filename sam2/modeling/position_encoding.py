"""Position encodings: 2-D sine (image features), random Fourier (prompts), axial RoPE (memory).

The sine and RoPE tables depend only on the feature-map shape, so they are computed once per shape
and device and reused; they are never parameters and never in checkpoints. Under `torch.compile`
the sine tables (large: 256 x 256 x 256 at stride 4 and 1024 px) are still looked up eagerly, a graph
break; the RoPE tables (small, and needed inside every memory-attention layer) are computed in the
graph, where a cache lookup would be a guard that fails once per new entry.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .eager import eager_under_compile


def _constant_table(fn):
    """Build a cached table outside inference mode so the same tensor also serves training."""
    with torch.inference_mode(False), torch.no_grad():
        return fn()


class SinePositionEncoding(nn.Module):
    """DETR-style 2-D sine encoding: `num_pos_feats // 2` channels for y, then as many for x.

    Within each axis the channels interleave sin and cos; coordinates run 1..H (1..W), are
    normalised by the last value and scaled to [0, 2*pi].
    """

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError(f"num_pos_feats must be even, got {num_pos_feats}")
        self.num_pos_feats = num_pos_feats // 2
        self.temperature = float(temperature)
        self._cache: dict[tuple, torch.Tensor] = {}

    def _table(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        eps, scale, n = 1e-6, 2 * math.pi, self.num_pos_feats
        y = torch.arange(1, h + 1, dtype=torch.float32, device=device).view(1, -1, 1).expand(1, h, w)
        x = torch.arange(1, w + 1, dtype=torch.float32, device=device).view(1, 1, -1).expand(1, h, w)
        y = y / (h + eps) * scale
        x = x / (w + eps) * scale
        dim_t = torch.arange(n, dtype=torch.float32, device=device)
        dim_t = torch.pow(self.temperature, 2 * (dim_t // 2) / n)
        pos_x = x[..., None] / dim_t
        pos_y = y[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).contiguous()

    @eager_under_compile
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x C x H x W -> B x num_pos_feats x H x W (a broadcast view, do not write to it)."""
        b, _, h, w = x.shape
        key = (h, w, x.device)
        table = self._cache.get(key)
        if table is None:
            table = self._cache[key] = _constant_table(lambda: self._table(h, w, x.device))
        return table.to(x.dtype).expand(b, -1, -1, -1)


class RandomFourierEncoding(nn.Module):
    """Encodes [0, 1] coordinates with a fixed random Gaussian projection (sin | cos)."""

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """coords: ... x 2 in [0, 1] -> ... x 2*num_pos_feats."""
        angles = 2 * math.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def grid(self, size: tuple[int, int]) -> torch.Tensor:
        """Dense encoding of an h x w grid of cell centres -> C x h x w."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ones = torch.ones((h, w), device=device, dtype=torch.float32)
        y = (ones.cumsum(dim=0) - 0.5) / h
        x = (ones.cumsum(dim=1) - 0.5) / w
        return self.encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)

    def points(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """coords: B x N x 2 pixel (x, y) in a (h, w) image -> B x N x C."""
        coords = coords.clone()
        coords[..., 0] = coords[..., 0] / image_size[1]
        coords[..., 1] = coords[..., 1] / image_size[0]
        return self.encode(coords.to(torch.float))


class AxialRoPE(nn.Module):
    """2-D axial rotary embedding for one attention head of width `dim`, real-valued.

    Channel pairs (2k, 2k+1) are rotated as complex numbers: the first dim/4 pairs by x * f_j,
    the next dim/4 by y * f_j, with f_j = theta^(-4j/dim) and token n at (x, y) = (n % W, n // W).
    Written with cos/sin instead of complex tensors so the memory attention exports cleanly.
    """

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        if dim % 4:
            raise ValueError(f"RoPE head dim must be a multiple of 4, got {dim}")
        self.dim = dim
        self.theta = theta
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _build(self, w: int, h: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = 1.0 / (self.theta ** (torch.arange(0, self.dim, 4, device=device)[: self.dim // 4].float() / self.dim))
        t = torch.arange(w * h, dtype=torch.float32, device=device)
        t_x = (t % w).float()
        t_y = torch.div(t, w, rounding_mode="floor").float()
        angles = torch.cat([torch.outer(t_x, freqs), torch.outer(t_y, freqs)], dim=-1)
        return torch.cos(angles), torch.sin(angles)

    def tables(self, num_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape num_tokens x dim/2 for a square grid of `num_tokens` tokens."""
        side = math.isqrt(num_tokens)
        if side * side != num_tokens:
            raise ValueError(f"RoPE needs a square token grid, got {num_tokens} tokens")
        if torch.compiler.is_compiling():
            return self._build(side, side, device)
        key = (side, device)
        if key not in self._cache:
            self._cache[key] = _constant_table(lambda: self._build(side, side, device))
        return self._cache[key]

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: B x heads x N x dim; cos/sin: N x dim/2 (N a multiple of their length: repeated)."""
        n = x.shape[-2]
        if n != cos.shape[0]:
            repeat = n // cos.shape[0]
            cos, sin = cos.repeat(repeat, 1), sin.repeat(repeat, 1)
        xf = x.float()
        re, im = xf[..., 0::2], xf[..., 1::2]
        out = torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1).flatten(-2)
        return out.type_as(x)
