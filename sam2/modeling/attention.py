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

    def attend_from_few(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Few queries, many keys (the prompt tokens attending to the image): q B x Nq x C, k/v B x Nk x C_kv
        unprojected -> B x Nq x C. The key and value projections move to the query side: each head's query
        goes back through W_k against the raw keys, and the raw values are mixed before W_v; the same
        products with half the key-sized matmul work. The key bias shifts a whole row of scores (softmax drops
        it); the value bias passes through rows of weights that sum to one (so no dropout here)."""
        if self.training and self.dropout_p > 0:
            return self(q, k, v)
        b, nq, _ = q.shape
        heads, width = self.num_heads, self.internal_dim // self.num_heads
        qh = self._heads(self.q_proj(q)) * width**-0.5  # B x H x Nq x w
        q_in = (qh @ self.k_proj.weight.view(heads, width, -1)).reshape(b, heads * nq, -1)
        weights = torch.softmax(q_in @ k.transpose(1, 2), dim=-1)  # B x (H, Nq) x Nk
        mixed = (weights @ v).view(b, heads, nq, -1)
        out = mixed @ self.v_proj.weight.view(heads, width, -1).transpose(1, 2) + self.v_proj.bias.view(heads, 1, width)
        return self.out_proj(out.transpose(1, 2).reshape(b, nq, self.internal_dim))

    def attend_to_few(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Many queries, few keys (the image tokens attending to the prompt tokens): q B x Nq x C, k/v
        B x Nk x C_kv unprojected -> B x Nq x C. All heads at once against block-diagonal keys and values
        (a kernel call per head would do products 16 wide, much slower on CPU), with the query and output
        projections moved onto those few blocks: the only query-sized matmuls are Nq x C by C x (Nk H)."""
        (b, nk, _), nq = k.shape, q.shape[1]  # q may be one image's tokens for B prompt sets
        heads, d = self.num_heads, self.internal_dim
        head_of = torch.arange(d, device=q.device) // (d // heads)
        own = (head_of == torch.arange(heads, device=q.device)[:, None]).to(q.dtype)  # H x D: a head's channels
        # Row (j, h): key j on head h's channels only. Heads innermost, because a softmax over an inner axis of
        # a few keys is much slower on CPU than over the next one.
        k_blocks = (self.k_proj(k).unsqueeze(2) * own).reshape(b, nk * heads, d) * (d // heads) ** -0.5
        v_blocks = (self.v_proj(v).unsqueeze(2) * own).reshape(b, nk * heads, d)
        # q_proj(q) k_blocks^T = q (k_blocks W_q)^T + k_blocks b_q; out_proj(w v_blocks) = w (v_blocks W_o^T) + b_o
        scores = q @ (k_blocks @ self.q_proj.weight).transpose(1, 2) + (k_blocks @ self.q_proj.bias)[:, None]
        weights = torch.softmax(scores.view(b, nq, nk, heads), dim=-2).view(b, nq, nk * heads)
        return weights @ (v_blocks @ self.out_proj.weight.T) + self.out_proj.bias


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
        # faster than folding (benchmarks/video.py --fold-on-cpu measures the folded path).
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
