"""Initialisation for training SAM 2 from scratch (not for fine-tuning: loaded weights replace it).

A prompt reaches the mask only through attention that matches its positional encoding against the
image's: the decoder's cross-attentions score (prompt + PE_p) W_q . (image + PE_g) W_k. With
independent random W_q and W_k that score carries no trace of |p - g|, and the decoder first learns
a prompt-free "salient things" mask it then rarely leaves (box and click prompts kept giving the same
masks). Equal orthogonal W_q = W_k make the score start as a scaled PE_p . PE_g, a kernel that peaks where
the prompt is: a decoder on fixed features then learns a disk around a click quickly instead of not at all
(the README's Benchmarks section has what was measured).
"""

from __future__ import annotations

import torch

from ..modeling.sam2_base import SAM2Base

PROMPT_ATTENTION_GAIN = 3.0  # the disk test learned with 3; with 1 the PE kernel is too flat to be found


@torch.no_grad()
def align_prompt_attention(model: SAM2Base, gain: float = PROMPT_ATTENTION_GAIN) -> None:
    """Equal, orthogonal query and key projections (no bias) in every cross-attention of the mask decoder."""
    transformer = model.sam_mask_decoder.transformer
    attentions = [a for layer in transformer.layers
                  for a in (layer.cross_attn_token_to_image, layer.cross_attn_image_to_token)]
    for attention in attentions + [transformer.final_attn_token_to_image]:
        torch.nn.init.orthogonal_(attention.q_proj.weight, gain=gain)
        attention.k_proj.weight.copy_(attention.q_proj.weight)
        attention.q_proj.bias.zero_()
        attention.k_proj.bias.zero_()
