"""The seam between the Serve image segmenter and a model family: what it needs from a model's image half.

The segmenter embeds an image once (the expensive call) and keeps the embedding in its cache; each click then
decodes prompt sets on cached embeddings (the cheap, frequent call), many clients' sets in one pass. Resizing,
coordinates, mask upsampling, the cache and the wire format stay in the segmenter; the model sees model-input
pixels and low-res logits only. `SAM2ImageModel` is our SAM 2 behind it. Another family (another backbone,
another decoder) is one more class with these members and a factory named in the serve YAML
(`models[].image_model: package.module:factory`, called as factory(spec, device, dtype)), and the segmenter,
the cache and the routes do not change.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from .serve.precision import autocast

if TYPE_CHECKING:
    from sam2.modeling.mask_decoder import DecoderImage
    from sam2.modeling.sam2_base import SAM2Base


class ImageModel(Protocol):
    image_size: int  # the side of the square input `embed` takes (the segmenter resizes images to it)
    mask_size: int  # the side of the low-res logits `decode` returns, and of the mask prompts it takes
    device: torch.device

    def embed(self, images: torch.Tensor) -> list[object]:
        """B x 3 x S x S, ImageNet-normalised (`sam2.transforms.ImageTransforms.to_model_input`) -> one
        embedding per image: the caller keeps it and hands it back to `decode`, and never looks inside."""
        ...

    def decode(self, embeddings: Sequence[object], coords: torch.Tensor | None, labels: torch.Tensor | None,
               masks: torch.Tensor | None, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """B prompt sets, set b on `embeddings[b]` (the same object for sets on one image): coords B x N x 2
        model-input pixels, box corners first; labels B x N (1 positive, 0 negative, 2 and 3 a box's corners);
        masks B x 1 x M x M logits (M = mask_size); either may be None. -> low-res logits B x C x M x M and
        predicted IoU B x C, float32; C = 3 with `multimask`, else 1."""
        ...


@dataclass
class SAM2Embedding:
    """image_embed: 1 x C x h x w (the no-memory embedding added, as the image predictor does); high_res:
    [1 x C/8 x 4h x 4w, 1 x C/4 x 2h x 2w]; prepared: the decoder's prompt-free work for clicks and boxes."""

    image_embed: torch.Tensor
    high_res: list[torch.Tensor]
    prepared: DecoderImage


class SAM2ImageModel:
    """Our SAM 2's image encoder, prompt encoder and mask decoder; in float32 its masks and scores equal
    `SAM2ImagePredictor`'s.

    In bfloat16 the embedding runs under autocast and is kept in bf16 (half the memory per cached image), and
    decoding runs on a bf16 copy of the mask decoder: autocast would cast the decoder's weights and the cached
    image side again on every click, which ate much of what bf16 saves on CPU (the README's Benchmarks section
    has the figures)."""

    def __init__(self, model: SAM2Base, dtype: torch.dtype = torch.float32) -> None:
        self.model, self.dtype = model, dtype
        self.decoder = model.sam_mask_decoder
        if dtype != torch.float32:
            self.decoder = copy.deepcopy(model.sam_mask_decoder).to(dtype)
        self.image_size = model.image_size
        self.mask_size = model.sam_prompt_encoder.mask_input_size[0]
        self.device = model.device

    def embed(self, images: torch.Tensor) -> list[SAM2Embedding]:
        with autocast(self.device, self.dtype):
            feats = self.model.image_features(images)
        embeds = (feats.vision + self.model.no_mem_embed.view(1, -1, 1, 1)).to(self.dtype)
        high_res = [level.to(self.dtype) for level in feats.high_res]
        out = []
        for i in range(len(images)):
            embed, levels = embeds[i : i + 1], [level[i : i + 1] for level in high_res]
            out.append(SAM2Embedding(embed, levels, self.model.prepare_for_clicks(embed, levels, self.decoder)))
        return out

    def decode(self, embeddings: Sequence[SAM2Embedding], coords, labels, masks, multimask):
        prompts = self.model.sam_prompt_encoder
        points = None if coords is None else (coords, labels)
        sparse, dense = (p.to(self.dtype) for p in prompts(points=points, masks=masks))
        one_image = all(e is embeddings[0] for e in embeddings)
        prepared = None
        if one_image:  # prompts on one image share its embedding, as in the predictor's batched prompts
            embed, high_res = embeddings[0].image_embed, embeddings[0].high_res
            prepared = embeddings[0].prepared if masks is None else None
        else:
            embed = torch.cat([e.image_embed for e in embeddings])
            high_res = [torch.cat(level) for level in zip(*(e.high_res for e in embeddings), strict=True)]
        low_res, iou, _, _ = self.decoder(
            image_embeddings=embed,
            image_pe=prompts.get_dense_pe().to(self.dtype),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            repeat_image=one_image,
            high_res_features=high_res,
            image=prepared,
        )
        return low_res.float(), iou.float()

