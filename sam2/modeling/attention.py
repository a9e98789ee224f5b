"""Multi-head attention with separate q/k/v projections (two-way transformer, memory attention)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .position_encoding import AxialRoPE


class Attention(nn.Module):
    """Attention that may project to a narrower internal width (`downsample_rate`) and accept
    keys/values of another width (`kv_in_dim`)."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        kv_in_dim = kv_in_dim or embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"{num_heads} heads do not divide width {self.internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.internal_dim))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: B x Nq x C, k/v: B x Nk x C_kv -> B x Nq x C."""
        return self._attend(self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v)))


class RoPEAttention(Attention):
    """Attention with 2-D axial RoPE on queries and keys.

    Queries form a square grid; keys are that grid repeated once per memory frame, followed by
    `num_k_exclude_rope` object-pointer tokens that are not rotated.
    """

    fold_on_cpu = False  # see forward; tests turn it on to check the folded path

    def __init__(self, *args, rope_theta: float = 10000.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rope = AxialRoPE(self.internal_dim // self.num_heads, theta=rope_theta)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        # Memory values are narrower (64) than the attention (256). Attention rows sum to one, so
        # attending to the raw values and projecting afterwards is the same computation with a
        # quarter of the value work; with dropout active the rows do not sum to one, so not then.
        # Not on CPU: there the fused kernel needs equal head widths, and with it the whole step is
        # 3-7 % faster than folding (t at 1024 px, 1 and 4 objects, benchmarks/video.py set-up).
        fold = (self.num_heads == 1 and v.shape[-1] < self.internal_dim
                and (q.device.type != "cpu" or self.fold_on_cpu) and not (self.training and self.dropout_p > 0))
        q = self._heads(self.q_proj(q))
        k = self._heads(self.k_proj(k))
        v = v.unsqueeze(1) if fold else self._heads(self.v_proj(v))
        cos, sin = self.rope.tables(q.shape[-2], q.device)
        q = AxialRoPE.rotate(q, cos, sin)
        num_rope = k.shape[-2] - num_k_exclude_rope
        if num_rope % q.shape[-2]:
            raise ValueError(f"{num_rope} rotated keys are not whole frames of {q.shape[-2]} tokens")
        if num_k_exclude_rope:
            k = torch.cat([AxialRoPE.rotate(k[:, :, :num_rope], cos, sin), k[:, :, num_rope:]], dim=2)
        else:
            k = AxialRoPE.rotate(k, cos, sin)
        if not fold:
            return self._attend(q, k, v)
        out = self.v_proj(_attention_in_chunks(q, k, v)[:, 0])
        return self.out_proj(out)


def _attention_in_chunks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         block_elements: int = 1 << 23) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for B x H x N x d inputs, a block of queries at a time so the score
    block (about `block_elements` floats) stays small; faster than the fused kernel when keys
    outnumber queries many times."""
    if torch.is_grad_enabled():  # training: the fused kernel, which has a backward
        return F.scaled_dot_product_attention(q, k, v)
    b, h, _, _ = q.shape
    chunk = max(16, block_elements // (b * h * k.shape[-2]))
    scale = q.shape[-1] ** -0.5
    kt = k.transpose(-2, -1) * scale
    if torch.is_autocast_enabled(q.device.type):  # let autocast pick the dtypes (no out=)
        blocks = [torch.softmax(q[..., i : i + chunk, :] @ kt, dim=-1) @ v for i in range(0, q.shape[-2], chunk)]
        return torch.cat(blocks, dim=-2)
    out = q.new_empty(*q.shape[:-1], v.shape[-1])
    for i in range(0, q.shape[-2], chunk):
        scores = q[..., i : i + chunk, :] @ kt
        torch.softmax(scores, dim=-1, out=scores)  # in place: no second score-sized buffer
        torch.matmul(scores, v, out=out[..., i : i + chunk, :])
    return out
