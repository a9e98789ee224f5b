"""Hiera trunk: a hierarchical ViT with windowed attention and query pooling between stages.

Tokens stay channels-last (B x H x W x C) throughout; the trunk returns one NCHW map per stage,
highest resolution first (strides 4, 8, 16, 32).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP
from .eager import eager_under_compile


def _pool(x: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """Max-pool a channels-last map: B x H x W x C -> B x H/s x W/s x C."""
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _to_windows(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """B x H x W x C -> (B*nW) x size x size x C, zero-padding bottom/right to a multiple of size."""
    b, h, w, c = x.shape
    pad_h, pad_w = (size - h % size) % size, (size - w % size) % size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // size, size, wp // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size, size, c), (hp, wp)


def _from_windows(x: torch.Tensor, size: int, padded: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of `_to_windows`: (B*nW) x size x size x C -> B x H x W x C (padding cropped)."""
    hp, wp = padded
    b = x.shape[0] // ((hp // size) * (wp // size))
    x = x.view(b, hp // size, wp // size, size, size, -1).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, hp, wp, -1)
    return x[:, : hw[0], : hw[1], :].contiguous() if (hp, wp) != hw else x


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution: B x 3 x H x W -> B x H/4 x W/4 x C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose queries may be max-pooled (stage transitions)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).unbind(2)
        if self.q_pool is not None:
            q = _pool(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(x.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block; at a stage change it projects and pools the shortcut too."""

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        window_size: int,
        q_stride: tuple[int, int] | None,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        q_pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = _pool(self.proj(x), self.pool)
        size = self.window_size
        if size > 0:
            hw = x.shape[1:3]
            x, padded = _to_windows(x, size)
        x = self.attn(x)
        if size > 0:
            if self.q_stride:
                size //= self.q_stride[0]
                hw = shortcut.shape[1:3]
                padded = tuple(n + (size - n % size) % size for n in hw)
            x = _from_windows(x, size, padded, tuple(hw))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


@dataclass(frozen=True)
class BlockSpec:
    dim: int
    dim_out: int
    num_heads: int
    window_size: int
    q_stride: tuple[int, int] | None


def plan_blocks(
    embed_dim: int,
    num_heads: int,
    stages: tuple[int, ...],
    global_att_blocks: tuple[int, ...],
    window_spec: tuple[int, ...],
    q_pool: int = 3,
    q_stride: tuple[int, int] = (2, 2),
    dim_mul: float = 2.0,
    head_mul: float = 2.0,
) -> list[BlockSpec]:
    """Per-block widths, heads and windows. A new stage's first block doubles the width, pools
    the queries, and still uses the previous stage's window size (as the checkpoints expect)."""
    stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
    pool_blocks = {end + 1 for end in stage_ends[:q_pool]}
    specs, stage, dim = [], 0, embed_dim
    for i in range(sum(stages)):
        window = 0 if i in global_att_blocks else window_spec[stage]
        dim_out = dim
        if i - 1 in stage_ends:
            dim_out = int(dim * dim_mul)
            num_heads = int(num_heads * head_mul)
            stage += 1
        specs.append(BlockSpec(dim, dim_out, num_heads, window, q_stride if i in pool_blocks else None))
        dim = dim_out
    return specs


class Hiera(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        stages: tuple[int, ...],
        global_att_blocks: tuple[int, ...],
        window_spec: tuple[int, ...],
        window_pos_embed_bkg_spatial_size: tuple[int, int],
    ) -> None:
        super().__init__()
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        self.patch_embed = PatchEmbed(embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))
        specs = plan_blocks(embed_dim, num_heads, stages, global_att_blocks, window_spec)
        self.blocks = nn.ModuleList(
            MultiScaleBlock(s.dim, s.dim_out, s.num_heads, s.window_size, s.q_stride) for s in specs
        )
        self.channel_list = [specs[end].dim_out for end in self.stage_ends][::-1]
        self._pos_cache: tuple | None = None

    @eager_under_compile
    def _position_embedding(self, hw: tuple[int, int]) -> torch.Tensor:
        """Bicubic-resized background embedding plus the tiled window embedding: 1 x H x W x C.

        Cached in eval mode; the key includes the parameters' version counters, so loading new
        weights (an in-place copy) invalidates it. Run eagerly under torch.compile (a graph break),
        so that the cache serves compiled code too, instead of the graph recomputing the bicubic resize
        every frame.
        """
        cacheable = not self.training and not torch.is_grad_enabled()
        key = (hw, self.pos_embed._version, self.pos_embed_window._version, self.pos_embed.device)
        if cacheable and self._pos_cache is not None and self._pos_cache[0] == key:
            return self._pos_cache[1]
        pos = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        win = self.pos_embed_window
        pos = pos + win.tile([1, 1, hw[0] // win.shape[-2], hw[1] // win.shape[-1]])
        pos = pos.permute(0, 2, 3, 1)
        if cacheable:
            self._pos_cache = (key, pos)
        return pos

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: B x 3 x H x W -> [B x C_i x H/s_i x W/s_i for s_i in 4, 8, 16, 32]."""
        x = self.patch_embed(x)
        x = x + self._position_embedding(tuple(x.shape[1:3]))
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
