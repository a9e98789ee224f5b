"""Prompt encoder: clicks and box corners -> sparse tokens; a low-res mask -> a dense embedding.

Point labels: -1 padding, 0 negative click, 1 positive click, 2 box top-left, 3 box bottom-right.
Boxes always arrive as two labelled corner points, as SAM 2's predictors pass them.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import LayerNorm2d
from .position_encoding import RandomFourierEncoding


class PromptEncoder(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe: tuple | None = None

    def get_dense_pe(self) -> torch.Tensor:
        """Dense PE of the image embedding grid: 1 x C x h x w (cached until the buffer changes)."""
        gaussian = self.pe_layer.positional_encoding_gaussian_matrix
        key = (gaussian._version, gaussian.device, gaussian.data_ptr())
        if self._dense_pe is None or self._dense_pe[0] != key or torch.is_grad_enabled():
            pe = self.pe_layer.grid(self.image_embedding_size).unsqueeze(0)
            if torch.is_grad_enabled():
                return pe
            self._dense_pe = (key, pe)
        return self._dense_pe[1]

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """points: B x N x 2 (input-image pixels), labels: B x N -> B x (N+1) x C.

        A padding point is always appended: the checkpoints were trained with it because SAM 2
        never passes a separate box prompt.
        """
        points = points + 0.5  # pixel centres
        pad_point = torch.zeros((points.shape[0], 1, 2), device=points.device)
        pad_label = -torch.ones((labels.shape[0], 1), device=labels.device)
        points = torch.cat([points, pad_point], dim=1)
        labels = torch.cat([labels, pad_label], dim=1)
        emb = self.pe_layer.points(points, self.input_image_size)
        emb = torch.where((labels == -1).unsqueeze(-1), torch.zeros_like(emb) + self.not_a_point_embed.weight, emb)
        for value, table in enumerate(self.point_embeddings):
            emb = torch.where((labels == value).unsqueeze(-1), emb + table.weight, emb)
        return emb

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> sparse B x N x C (N may be 0), dense B x C x h x w."""
        if points is not None:
            batch = points[0].shape[0]
        elif masks is not None:
            batch = masks.shape[0]
        else:
            batch = 1
        device = self.no_mask_embed.weight.device
        if points is not None:
            sparse = self._embed_points(points[0], points[1])
        else:
            sparse = torch.empty((batch, 0, self.embed_dim), device=device)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)
        return sparse, dense
