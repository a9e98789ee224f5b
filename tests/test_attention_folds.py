"""Attention computed in a cheaper order gives the plain attention: the memory cross-attention's raw values
attended then projected, and the mask decoder's prompt-token <-> image cross-attentions with projections
moved onto the few prompt tokens."""

from __future__ import annotations

import torch

from sam2.modeling import attention
from sam2.modeling.attention import Attention, RoPEAttention


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


def test_few_tokens_attention_equals_the_plain_attention():
    """Both decoder directions, 8 heads of width 16 (the decoder's), non-zero biases; the image side shared
    by three prompt sets (one image, broadcast) as the interactive predictors pass it."""
    torch.manual_seed(0)
    attn = Attention(256, 8, downsample_rate=2).eval()
    with torch.no_grad():
        for layer in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
            layer.bias.normal_()
    tokens, image = torch.randn(3, 7, 256), torch.randn(1, 300, 256)
    with torch.inference_mode():
        images = image.expand(3, -1, -1)
        torch.testing.assert_close(attn.attend_from_few(tokens, images, images * 2), attn(tokens, images, images * 2),
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(attn.attend_to_few(image, tokens, tokens * 2), attn(images, tokens, tokens * 2),
                                   atol=1e-4, rtol=1e-4)
