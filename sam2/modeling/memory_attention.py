"""Memory attention: conditions the current frame's features on past frames' memories and
object pointers (self-attention, then cross-attention to memory, both with axial RoPE)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .attention import RoPEAttention


class MemoryAttentionLayer(nn.Module):
    """Pre-norm layer. Keys carry the memory PE; queries carry no additive PE (RoPE only)."""

    def __init__(self, d_model: int = 256, mem_dim: int = 64, dim_feedforward: int = 2048,
                 dropout: float = 0.1, rope_theta: float = 10000.0) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(d_model, 1, dropout=dropout, rope_theta=rope_theta)
        self.cross_attn_image = RoPEAttention(d_model, 1, dropout=dropout, kv_in_dim=mem_dim, rope_theta=rope_theta)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout_p = dropout

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
                num_k_exclude_rope: int = 0, same_rows: bool = False) -> torch.Tensor:
        """x: B x HW x C; memory, memory_pos: B x M x mem_dim. `same_rows`: every x[b] is equal (the
        first layer of several objects on one frame), so self-attention runs once for all."""
        drop = partial(F.dropout, p=self.dropout_p, training=self.training)
        y = self.norm1(x[:1] if same_rows else x)
        x = x + drop(self.self_attn(y, y, y))
        y = self.norm2(x)
        x = x + drop(self.cross_attn_image(y, memory + memory_pos, memory, num_k_exclude_rope))
        return x + drop(self.linear2(drop(torch.relu(self.linear1(self.norm3(x))))))


class MemoryAttention(nn.Module):
    def __init__(self, d_model: int = 256, mem_dim: int = 64, num_layers: int = 4,
                 dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(d_model, mem_dim, dim_feedforward, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                memory_pos: torch.Tensor, num_obj_ptr_tokens: int = 0) -> torch.Tensor:
        """curr, curr_pos: B x HW x C (batch first); memory, memory_pos: B x M x mem_dim, the last
        `num_obj_ptr_tokens` being object-pointer tokens. -> B x HW x C."""
        # Objects tracked on one frame share its features (a broadcast view): until the first
        # cross-attention their rows are identical.
        shared = curr.shape[0] > 1 and curr.stride(0) == 0 and curr_pos.stride(0) == 0 and not self.training
        x = curr + 0.1 * curr_pos
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, memory_pos, num_obj_ptr_tokens, same_rows=shared and i == 0)
        return self.norm(x)
