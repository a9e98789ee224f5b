"""Image embeddings kept by a replica, keyed by the image's content hash, least recently used dropped first.

An entry also keeps the low-res logits of its last few predictions, so that a refinement click can send the
previous mask back as a prompt by id instead of 256 x 256 floats.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch

RECENT_PREDICTIONS = 8


@dataclass
class ImageEmbedding:
    """features: what the image model's `embed` made of the image (its business; see
    `sam2_ray.image_models`); hw: the original image's height and width."""

    features: object
    hw: tuple[int, int]
    # prediction id -> (C x M x M low-res logits, C predicted IoU)
    predictions: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=OrderedDict)

    def remember(self, prediction_id: str, low_res: torch.Tensor, scores: torch.Tensor) -> None:
        self.predictions[prediction_id] = (low_res, scores)
        while len(self.predictions) > RECENT_PREDICTIONS:
            self.predictions.popitem(last=False)


class EmbeddingCache:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"the embedding cache needs room for at least one image, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[str, ImageEmbedding] = OrderedDict()
        self.hits = self.misses = self.evictions = 0

    def get(self, image_id: str) -> ImageEmbedding | None:
        entry = self._entries.get(image_id)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(image_id)
        return entry

    def put(self, image_id: str, entry: ImageEmbedding) -> None:
        self._entries[image_id] = entry
        self._entries.move_to_end(image_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.evictions += 1

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict:
        return {"size": len(self), "capacity": self.capacity, "hits": self.hits, "misses": self.misses,
                "evictions": self.evictions}
