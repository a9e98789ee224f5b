"""Two-way transformer of the mask decoder: prompt tokens and image tokens attend to each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import Attention
from .common import MLP


@dataclass
class ImageSide:
    """The first block's work on an image that no prompt changes: its tokens (1 x HW x C), their PE, their
    sum, and the token->image keys and values (as heads). An interactive
    server computes it once per image, so that a click pays for the prompt-dependent part only."""

    keys: torch.Tensor
    key_pe: torch.Tensor
    with_pe: torch.Tensor
    t2i_k: torch.Tensor
    t2i_v: torch.Tensor


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image, token MLP, image->token; post-norm after each."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, num_layers=2, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def image_side(self, keys: torch.Tensor, key_pe: torch.Tensor) -> ImageSide:
        k = keys + key_pe
        t2i = self.cross_attn_token_to_image
        return ImageSide(keys, key_pe, k, t2i._heads(t2i.k_proj(k)), t2i._heads(t2i.v_proj(keys)))

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor,
        image: ImageSide | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`image`: this block's image side, computed beforehand (then `keys` and `key_pe` are its own)."""
        if self.skip_first_layer_pe:
            # The first block replaces the queries (no residual): they carry their PE already.
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        q = queries + query_pe
        if image is None:
            k = keys + key_pe  # keys do not change until the last step: this serves both cross-attentions
            queries = self.norm2(queries + t2i.attend_from_few(q, k, keys))
        else:
            batch = queries.shape[0]
            k, v = image.t2i_k.expand(batch, -1, -1, -1), image.t2i_v.expand(batch, -1, -1, -1)
            queries = self.norm2(queries + t2i._attend(t2i._heads(t2i.q_proj(q)), k, v))
            k = image.with_pe
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + i2t.attend_to_few(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim, num_heads, mlp_dim, attention_downsample_rate, skip_first_layer_pe=(i == 0)
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def image_side(self, image_embedding: torch.Tensor, image_pe: torch.Tensor) -> ImageSide:
        """1 x C x H x W image embedding (dense prompt added) and PE -> the first block's image side."""
        keys, key_pe = image_embedding.flatten(2).transpose(1, 2), image_pe.flatten(2).transpose(1, 2)
        return self.layers[0].image_side(keys, key_pe)

    def forward(
        self, image_embedding: torch.Tensor | None, image_pe: torch.Tensor | None, point_embedding: torch.Tensor,
        image: ImageSide | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embedding/image_pe: B x C x H x W, or None with `image` (from `image_side`, shared by the B
        prompt sets); point_embedding: B x N x C. Returns (tokens B x N x C, image tokens B x HW x C)."""
        if image is None:
            keys = image_embedding.flatten(2).transpose(1, 2)
            key_pe = image_pe.flatten(2).transpose(1, 2)
        else:
            keys, key_pe = image.keys, image.key_pe
        queries = point_embedding
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, point_embedding, key_pe, image if i == 0 else None)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image.attend_from_few(q, k, keys))
        return queries, keys
