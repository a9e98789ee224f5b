"""The image half of a serving replica, as a plain object: embed images into a bounded cache (the expensive
call, once per image), and decode prompt sets from many clients in one decoder pass (the cheap, frequent call).
It depends on the image-model seam only (`sam2_ray.image_models.ImageModel`): our SAM 2 by default, whose
float32 masks and scores equal `SAM2ImagePredictor`'s for the same image and prompts, or another model named in
the serve YAML. Precision (float32 or bfloat16) is the model's business (see `SAM2ImageModel`)."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

import numpy as np
import torch

from sam2.modeling.tracking import mask_logits
from sam2.transforms import ImageTransforms
from sam2.video_prompts import mask_prompt

from ..image_models import ImageModel
from .embedding_cache import EmbeddingCache, ImageEmbedding
from .errors import EMBEDDING_MISSING, RequestError
from .masks import decode_rle, mask_payload
from .media import decode_image
from .schemas import MaskInput, PredictRequest


@dataclass
class _Decode:
    """One request, ready for the decoder: coords 1 x N x 2 model-input pixels (box corners first), labels
    1 x N, mask 1 x 1 x M x M logits (M: the model's mask_size)."""

    index: int
    request: PredictRequest
    entry: ImageEmbedding
    coords: torch.Tensor | None
    labels: torch.Tensor | None
    mask: torch.Tensor | None

    @property
    def key(self) -> tuple:
        """Requests that can share one decoder pass: same token count, mask or not, multimask or not."""
        tokens = 0 if self.coords is None else self.coords.shape[1]
        return tokens, self.mask is not None, self.request.multimask_output


class ImageSegmenter:
    def __init__(self, model: ImageModel, model_name: str, cache_size: int, max_image_pixels: int) -> None:
        self.model = model
        self.model_name = model_name
        self.max_image_pixels = max_image_pixels
        self.transforms = ImageTransforms(model.image_size)
        self.cache = EmbeddingCache(cache_size)
        self.decoder_batches: Counter[int] = Counter()  # prompt sets per decoder pass -> passes
        self.predict_seconds: deque[float] = deque(maxlen=1000)  # recent passes, for /stats

    # ------------------------------------------------------------------------------------------------ embed
    @torch.inference_mode()
    def embed(self, key: str, data: bytes) -> dict:
        """Embed an image file's bytes under its content hash `key` (see `media.image_id`), unless cached."""
        start = time.perf_counter()
        cached = key in self.cache
        if not cached:
            image = decode_image(data, self.max_image_pixels)
            [features] = self.model.embed(self.transforms.to_model_input(image, self.model.device)[None])
            self.cache.put(key, ImageEmbedding(features, image.shape[:2]))
        h, w = self.cache.get(key).hw
        return {"image_id": key, "model": self.model_name, "width": w, "height": h, "cached": cached,
                "seconds": time.perf_counter() - start}

    # ---------------------------------------------------------------------------------------------- predict
    @torch.inference_mode()
    def predict(self, requests: list[PredictRequest]) -> list[dict | RequestError]:
        """One result per request, in order: a Prediction body, or the RequestError that request earned."""
        start = time.perf_counter()
        results: list[dict | RequestError | None] = [None] * len(requests)
        groups: dict[tuple, list[_Decode]] = defaultdict(list)
        for i, request in enumerate(requests):
            try:
                item = self._prepare(i, request)
            except RequestError as error:
                results[i] = error
                continue
            groups[item.key].append(item)
        for items in groups.values():
            self.decoder_batches[len(items)] += 1
            low_res, iou = self._decode(items)
            for item, item_low_res, item_iou in zip(items, low_res, iou, strict=True):
                results[item.index] = self._finish(item, item_low_res, item_iou)
        self.predict_seconds.append(time.perf_counter() - start)
        return results

    def _prepare(self, index: int, request: PredictRequest) -> _Decode:
        entry = self.cache.get(request.image_id)
        if entry is None:
            raise RequestError(404, f"image {request.image_id} is not embedded on this replica (never sent, or "
                                    "evicted from its cache): POST it to /images/embed, then predict again",
                               code=EMBEDDING_MISSING)
        h, w = entry.hw
        corners = [request.box[:2], request.box[2:]] if request.box is not None else []
        xy = corners + request.points
        for x, y in xy:
            if not (0 <= x <= w and 0 <= y <= h):
                raise RequestError(422, f"point ({x:g}, {y:g}) lies outside the {w}x{h} image "
                                        f"(x in [0, {w}], y in [0, {h}])")
        coords = labels = None
        if xy:
            pixels = torch.tensor([xy], dtype=torch.float32, device=self.model.device)
            coords = self.transforms.transform_coords(pixels, True, (h, w))
            labels = torch.tensor([[2, 3][: len(corners)] + list(request.labels)], dtype=torch.int,
                                  device=self.model.device)
        mask = self._mask_input(entry, request.mask_input) if request.mask_input is not None else None
        return _Decode(index, request, entry, coords, labels, mask)

    def _mask_input(self, entry: ImageEmbedding, mask_input: MaskInput) -> torch.Tensor:
        side = self.model.mask_size
        if mask_input.rle is not None:
            mask = decode_rle(mask_input.rle, *entry.hw, "mask_input.rle")
            binary = mask_prompt(mask, side, self.model.device, "mask_input")
            return mask_logits(binary)
        earlier = entry.predictions.get(mask_input.prediction_id)
        if earlier is None:
            raise RequestError(404, f"prediction {mask_input.prediction_id} is not among the last predictions "
                                    "kept for this image on this replica")
        logits, scores = earlier
        index = int(torch.argmax(scores)) if mask_input.index is None else mask_input.index
        if index >= len(logits):
            raise RequestError(422, f"prediction {mask_input.prediction_id} has {len(logits)} masks, no index {index}")
        return logits[index][None, None]

    def _decode(self, items: list[_Decode]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> low-res logits B x C x M x M, predicted IoU B x C, for B prompt sets sharing one key."""
        coords = labels = masks = None
        if items[0].coords is not None:
            coords, labels = torch.cat([d.coords for d in items]), torch.cat([d.labels for d in items])
        if items[0].mask is not None:
            masks = torch.cat([d.mask for d in items])
        return self.model.decode([d.entry.features for d in items], coords, labels, masks,
                                 items[0].request.multimask_output)

    def _finish(self, item: _Decode, low_res: torch.Tensor, iou: torch.Tensor) -> dict:
        """C x M x M logits, C scores -> the response body; the logits are kept for refinement."""
        prediction_id = uuid.uuid4().hex
        item.entry.remember(prediction_id, torch.clamp(low_res, -32.0, 32.0), iou)
        scores = iou.float().cpu().tolist()
        best = int(np.argmax(scores))
        if item.request.best_only:  # upsampling and encoding are most of a click's cost after the decoder
            low_res, scores, best = low_res[best : best + 1], scores[best : best + 1], 0
        masks = (self.transforms.postprocess_masks(low_res[None], item.entry.hw)[0] > 0).cpu().numpy()
        fmt = item.request.mask_format
        h, w = item.entry.hw
        return {"image_id": item.request.image_id, "model": self.model_name, "prediction_id": prediction_id,
                "width": w, "height": h, "best": best,
                "masks": [{"score": s, **mask_payload(m, fmt)} for s, m in zip(scores, masks, strict=True)]}

    def stats(self) -> dict:
        recent = sorted(self.predict_seconds)
        return {"cache": self.cache.stats(), "decoder_batches": dict(self.decoder_batches),
                "predict_ms_p50": round(1000 * recent[len(recent) // 2], 2) if recent else None}
