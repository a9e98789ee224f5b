"""Mask decoder: output tokens + prompt tokens through the two-way transformer, then upscaled
masks from per-token hypernetworks, an IoU head and an object-presence head."""

from __future__ import annotations

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .two_way_transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        dynamic_multimask_via_stability: bool = False,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.obj_score_token = nn.Embedding(1, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        # 1x1 projections of the stride-4 / stride-8 features, applied once per image.
        self.conv_s0 = nn.Conv2d(transformer_dim, transformer_dim // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(transformer_dim, transformer_dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth, sigmoid_output=True
        )
        self.pred_obj_score_head = MLP(transformer_dim, transformer_dim, 1, 3)
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.stability_delta = dynamic_multimask_stability_delta
        self.stability_thresh = dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """image_embeddings: B x C x h x w (or 1 x ... with repeat_image); sparse: B x N x C;
        dense: B x C x h x w; high_res_features: [B x C/8 x 4h x 4w, B x C/4 x 2h x 2w].

        Returns masks B x M x 4h x 4w logits, IoU B x M, the SAM output tokens used for object
        pointers (B x M' x C), object-score logits B x 1; M = 3 with multimask output, else 1.
        """
        masks, iou, mask_tokens_out, obj_logits = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
            repeat_image, high_res_features,
        )
        if multimask_output:
            masks, iou = masks[:, 1:], iou[:, 1:]
            sam_tokens = mask_tokens_out[:, 1:]
        else:
            if self.dynamic_multimask_via_stability and not self.training:
                masks, iou = self._stable_or_best(masks, iou)
            else:
                masks, iou = masks[:, 0:1], iou[:, 0:1]
            # The pointer keeps the single-mask token even when the fallback swaps the mask.
            sam_tokens = mask_tokens_out[:, 0:1]
        return masks, iou, sam_tokens, obj_logits

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        repeat_image: bool,
        high_res_features: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        output_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight])
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = output_tokens.unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        if repeat_image and batch > 1:
            src = torch.repeat_interleave(image_embeddings, batch, dim=0)
        else:
            src = image_embeddings
        src = src + dense_prompt_embeddings
        pos_src = image_pe.expand(batch, -1, -1, -1)
        b, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 1, :]
        mask_tokens_out = hs[:, 2 : 2 + self.num_mask_tokens, :]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        up1, norm, act1, up2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res_features
        upscaled = act1(norm(upsample_2x(up1, src) + feat_s1))
        upscaled = act2(upsample_2x(up2, upscaled) + feat_s0)

        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        iou = self.iou_prediction_head(iou_token_out)
        obj_logits = self.pred_obj_score_head(hs[:, 0, :])
        return masks, iou, mask_tokens_out, obj_logits

    def _stability(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.flatten(-2)
        inter = torch.sum(logits > self.stability_delta, dim=-1).float()
        union = torch.sum(logits > -self.stability_delta, dim=-1).float()
        return torch.where(union > 0, inter / union, 1.0)

    def _stable_or_best(self, masks: torch.Tensor, iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the single-mask output when it is stable under a +-delta threshold shift, else
        the multimask output with the highest predicted IoU (per batch element)."""
        best = torch.argmax(iou[:, 1:], dim=-1)
        rows = torch.arange(masks.shape[0], device=masks.device)
        best_masks = masks[:, 1:][rows, best].unsqueeze(1)
        best_iou = iou[:, 1:][rows, best].unsqueeze(1)
        single_masks, single_iou = masks[:, 0:1], iou[:, 0:1]
        stable = self._stability(single_masks) >= self.stability_thresh
        masks_out = torch.where(stable[..., None, None].expand_as(single_masks), single_masks, best_masks)
        iou_out = torch.where(stable.expand_as(single_iou), single_iou, best_iou)
        return masks_out, iou_out


def upsample_2x(conv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """A 2x2 stride-2 transposed convolution. On CPU as one matmul and a pixel shuffle: the same sums;
    faster than the CPU convolution kernel for these shapes when the cores are busy, about even on a
    quiet machine (a served click: within noise)."""
    if x.device.type != "cpu":
        return conv(x)
    b, c, h, w = x.shape
    out = conv.out_channels
    y = x.flatten(2).transpose(1, 2) @ conv.weight.reshape(c, out * 4)  # B x HW x (out, 2, 2)
    y = y.view(b, h, w, out, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, out, 2 * h, 2 * w)
    return y + conv.bias.view(1, -1, 1, 1)
