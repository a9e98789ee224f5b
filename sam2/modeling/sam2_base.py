"""SAM2Base: every module and free parameter of a SAM 2 / 2.1 checkpoint, plus feature extraction.

Attribute names and registration order reproduce the official checkpoint layout, so
`load_state_dict(strict=True)` accepts Meta's files unchanged. The tracking logic that uses the
memory modules lives in the video predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ModelConfig
from .common import MLP
from .hiera import Hiera
from .image_encoder import FpnNeck, ImageEncoder
from .mask_decoder import DecoderImage, MaskDecoder
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder
from .prompt_encoder import PromptEncoder
from .two_way_transformer import TwoWayTransformer


@dataclass
class ImageFeatures:
    """Backbone output of a batch of images, ready for the SAM heads.

    vision: B x C x h x w raw stride-16 features; vision_pos: its sine PE;
    high_res: [B x C/8 x 4h x 4w, B x C/4 x 2h x 2w], already projected by conv_s0 / conv_s1.
    """

    vision: torch.Tensor
    vision_pos: torch.Tensor
    high_res: list[torch.Tensor]


class SAM2Base(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, mem = config.d_model, config.mem_dim
        # Free parameters first: this is their order in official checkpoints.
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(config.num_maskmem, 1, 1, mem))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, d))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, d))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, d))
        if config.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, mem))
        else:
            self.no_obj_embed_spatial = None

        t = config.trunk
        trunk = Hiera(t.embed_dim, t.num_heads, t.stages, t.global_att_blocks, t.window_spec,
                      t.window_pos_embed_bkg_spatial_size)
        self.image_encoder = ImageEncoder(trunk, FpnNeck(d, trunk.channel_list), scalp=1)
        # Turns a 16x-resolution mask prompt into a mask-decoder input (mask-as-output frames).
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = MemoryAttention(d, mem, config.memory_attention_layers, config.memory_attention_ffn)
        self.memory_encoder = MemoryEncoder(d, mem)
        side = config.embedding_size
        self.sam_prompt_encoder = PromptEncoder(d, (side, side), (config.image_size, config.image_size))
        self.sam_mask_decoder = MaskDecoder(
            d,
            TwoWayTransformer(depth=2, embedding_dim=d, num_heads=8, mlp_dim=config.decoder_mlp_dim),
            dynamic_multimask_via_stability=config.dynamic_multimask_via_stability,
            dynamic_multimask_stability_delta=config.dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=config.dynamic_multimask_stability_thresh,
        )
        self.obj_ptr_proj = MLP(d, d, d, 3)
        self.obj_ptr_tpos_proj = nn.Linear(d, mem) if config.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr):
            nn.init.trunc_normal_(p, std=0.02)
        if self.no_obj_embed_spatial is not None:
            nn.init.trunc_normal_(self.no_obj_embed_spatial, std=0.02)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    def forward_image(self, images: torch.Tensor) -> dict[str, object]:
        """Meta-compatible backbone output with the high-res levels projected for the decoder."""
        out = self.image_encoder(images)
        fpn = list(out["backbone_fpn"])
        fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])
        fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])
        out["backbone_fpn"] = fpn
        return out

    def prepare_for_clicks(self, image_embed: torch.Tensor, high_res: list[torch.Tensor],
                           decoder: MaskDecoder | None = None) -> DecoderImage:
        """The decoder's prompt-free work for clicks and boxes (no mask prompt) on one image's 1 x C x h x w
        embedding and high-res features, for `decoder` (default: this model's; a copy in the embedding's dtype)."""
        decoder = decoder or self.sam_mask_decoder
        no_mask = self.sam_prompt_encoder.no_mask_embed.weight.view(1, -1, 1, 1).to(image_embed.dtype)
        return decoder.prepare_image(image_embed, self.sam_prompt_encoder.get_dense_pe().to(image_embed.dtype),
                                     no_mask, high_res)

    def image_features(self, images: torch.Tensor) -> ImageFeatures:
        """images: B x 3 x S x S normalised -> features for the SAM heads and the memory."""
        out = self.forward_image(images)
        fpn, pos = out["backbone_fpn"], out["vision_pos_enc"]
        return ImageFeatures(vision=fpn[-1], vision_pos=pos[-1], high_res=list(fpn[:-1]))
