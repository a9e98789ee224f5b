"""The memory cross-attention's two equal computations: values projected before attending (the fused
kernel, used on CPU) and raw values attended then projected (fewer value FLOPs, used elsewhere)."""

from __future__ import annotations

import torch

from sam2.modeling import attention
from sam2.modeling.attention import RoPEAttention


def test_folded_values_give_the_same_attention(monkeypatch):
    torch.manual_seed(0)
    attn = RoPEAttention(64, 1, kv_in_dim=16).eval()
    q = torch.randn(2, 16, 64)  # a 4 x 4 grid of queries
    k = torch.randn(2, 3 * 16 + 5, 16)  # three memory frames and five object pointers
    with torch.inference_mode():
        plain = attn(q, k, k, num_k_exclude_rope=5)
        calls = []
        chunks = attention._attention_in_chunks
        monkeypatch.setattr(attention, "_attention_in_chunks", lambda *a: calls.append(1) or chunks(*a))
        monkeypatch.setattr(RoPEAttention, "fold_on_cpu", True)
        folded = attn(q, k, k, num_k_exclude_rope=5)
    assert calls, "the folded path did not run"
    torch.testing.assert_close(folded, plain, atol=1e-5, rtol=1e-5)
