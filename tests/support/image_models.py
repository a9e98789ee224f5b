"""An image model written for the tests: another "model family" behind the image-model seam
(`sam2_ray.image_models.ImageModel`), with sizes unlike SAM 2's, whose masks are plain geometry: a box prompt
is its rectangle, a positive click adds a square around it, a negative click removes one, a mask prompt is kept."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sam2_ray.replica import ModelSpec

CLICK_HALF_SIDE = 16  # model-input pixels


@dataclass(frozen=True)
class ToyEmbedding:
    brightness: float  # of the model input: something of the image, so that an embedding is one image's


class BoxImageModel:
    image_size = 256
    mask_size = 64

    def __init__(self, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.device, self.dtype = torch.device(device), dtype
        self.embedded = 0  # images embedded
        self.decodes: list[int] = []  # prompt sets per decode call

    def embed(self, images: torch.Tensor) -> list[ToyEmbedding]:
        assert images.shape[1:] == (3, self.image_size, self.image_size)
        self.embedded += len(images)
        return [ToyEmbedding(float(image.mean())) for image in images]

    def decode(self, embeddings, coords, labels, masks, multimask):
        assert all(isinstance(e, ToyEmbedding) for e in embeddings)
        self.decodes.append(len(embeddings))
        side, step = self.mask_size, self.image_size / self.mask_size
        centres = (torch.arange(side, dtype=torch.float32, device=self.device) + 0.5) * step
        ys, xs = centres[:, None], centres[None, :]
        out = torch.zeros(len(embeddings), side, side, dtype=torch.bool, device=self.device)
        if masks is not None:
            out |= masks[:, 0] > 0
        for b in range(len(embeddings) if coords is not None else 0):
            points, kinds = coords[b].tolist(), labels[b].tolist()
            if kinds[:2] == [2, 3]:
                (x0, y0), (x1, y1) = points[:2]
                out[b] |= (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
            for (x, y), kind in zip(points, kinds, strict=True):
                if kind in (0, 1):
                    square = ((xs - x).abs() <= CLICK_HALF_SIDE) & ((ys - y).abs() <= CLICK_HALF_SIDE)
                    out[b] = out[b] | square if kind == 1 else out[b] & ~square
        logits = torch.where(out, 10.0, -10.0)[:, None]
        count = 3 if multimask else 1
        scores = torch.tensor([0.5, 0.9, 0.7][:count], device=self.device)
        return logits.expand(-1, count, -1, -1).clone(), scores.expand(len(embeddings), -1).clone()


def box_image_model(spec: ModelSpec, device: str, dtype: torch.dtype) -> BoxImageModel:
    return BoxImageModel(device, dtype)
