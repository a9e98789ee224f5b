"""Mask decoder: output tokens + prompt tokens through the two-way transformer, then upscaled
masks from per-token hypernetworks, an IoU head and an object-presence head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d
from .two_way_transformer import ImageSide, TwoWayTransformer


@dataclass
class DecoderImage:
    """What decoding spends on an image whatever the clicks or box: the first transformer block's image side
    and the high-res features in the upscaling's row order. Computed once per image by an interactive
    predictor, so that a click pays for the prompt-dependent part only."""

    first_block: ImageSide
    high_res: tuple[torch.Tensor, torch.Tensor]


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
        image: DecoderImage | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """image_embeddings: B x C x h x w (or 1 x ... with repeat_image); sparse: B x N x C;
        dense: B x C x h x w; high_res_features: [B x C/8 x 4h x 4w, B x C/4 x 2h x 2w].
        `image`: `prepare_image(...)` of one image under its dense prompt, shared by the B prompt sets; it
        stands for image_embeddings, dense_prompt_embeddings and high_res_features, which are then not read.

        Returns masks B x M x 4h x 4w logits, IoU B x M, the SAM output tokens used for object
        pointers (B x M' x C), object-score logits B x 1; M = 3 with multimask output, else 1.
        """
        masks, iou, mask_tokens_out, obj_logits = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
            repeat_image, high_res_features, image,
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

    def prepare_image(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      dense_prompt_embeddings: torch.Tensor, high_res_features: list[torch.Tensor]) -> DecoderImage:
        """The prompt-independent part of decoding one image (1 x C x h x w) under a fixed dense prompt
        (the no-mask embedding, for clicks and boxes): compute once, pass to every `forward` on it."""
        first = self.transformer.image_side(image_embeddings + dense_prompt_embeddings, image_pe)
        return DecoderImage(first, self.high_res_rows(high_res_features))

    def high_res_rows(self, high_res_features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """[B x C/8 x 4h x 4w, B x C/4 x 2h x 2w] -> B x 16hw x C/8 and B x 4hw x C/4: the features as rows in
        the order `_upscaled_masks` makes its pixels, each with its transposed convolution's bias added."""
        feat_s0, feat_s1 = high_res_features
        b, c1, h2, w2 = feat_s1.shape
        h, w = h2 // 2, w2 // 2
        # stride-8 pixel (2i + a, 2j + b) -> row (i, j, a, b); stride-4 pixel (4i + 2a + c, 4j + 2b + d) -> row
        # (i, j, a, b, c, d).
        s1 = feat_s1.view(b, c1, h, 2, w, 2).permute(0, 2, 4, 3, 5, 1).reshape(b, 4 * h * w, c1)
        c0 = feat_s0.shape[1]
        s0 = feat_s0.view(b, c0, h, 2, 2, w, 2, 2).permute(0, 2, 5, 3, 6, 4, 7, 1).reshape(b, 16 * h * w, c0)
        up1, _, _, up2, _ = self.output_upscaling
        return s1 + up1.bias, s0 + up2.bias

    def _upscaled_masks(self, src: torch.Tensor, hyper_in: torch.Tensor,
                        high_res: tuple[torch.Tensor, torch.Tensor], h: int, w: int) -> torch.Tensor:
        """src: B x hw x C decoded image tokens; hyper_in: B x M x C/8 -> mask logits B x M x 4h x 4w.

        Each 2x2 stride-2 transposed convolution is one matmul; its output stays in sub-pixel row order with
        channels last (so its LayerNorm is a plain one), and only the small final masks are put into pixel
        order: no full-resolution feature map is ever transposed (that was a third of a click on CPU)."""
        up1, norm, act1, up2, act2 = self.output_upscaling
        s1, s0 = high_res
        b = src.shape[0]
        x = src @ up1.weight.permute(0, 2, 3, 1).reshape(up1.in_channels, -1)  # B x hw x (2, 2, C/4)
        x = x.view(b, 4 * h * w, up1.out_channels).add_(s1)  # in place: a matmul's backward needs no output
        x = act1(F.layer_norm(x, (up1.out_channels,), norm.weight, norm.bias, norm.eps))
        x = x @ up2.weight.permute(0, 2, 3, 1).reshape(up2.in_channels, -1)
        x = act2(x.view(b, 16 * h * w, up2.out_channels).add_(s0))
        masks = x @ hyper_in.transpose(1, 2)  # B x 16hw x M, rows (i, j, a, b, c, d)
        m = masks.shape[-1]
        return masks.view(b, h, w, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6).reshape(b, m, 4 * h, 4 * w)

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        repeat_image: bool,
        high_res_features: list[torch.Tensor],
        image: DecoderImage | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        output_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight])
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = output_tokens.unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        h, w = image_pe.shape[-2:]
        if image is not None:
            hs, src = self.transformer(None, None, tokens, image.first_block)
        else:
            if repeat_image and batch > 1:
                src = torch.repeat_interleave(image_embeddings, batch, dim=0)
            else:
                src = image_embeddings
            hs, src = self.transformer(src + dense_prompt_embeddings, image_pe.expand(batch, -1, -1, -1), tokens)
        iou_token_out = hs[:, 1, :]
        mask_tokens_out = hs[:, 2 : 2 + self.num_mask_tokens, :]

        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        high_res = image.high_res if image is not None else self.high_res_rows(high_res_features)
        masks = self._upscaled_masks(src, hyper_in, high_res, h, w)
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
