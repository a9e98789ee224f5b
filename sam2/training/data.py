"""Training clips: a few frames of a video with up to a few objects, squashed to the model's input.

Clips come from the synthetic generator (an endless supply, one seed per clip) or from a user's
DAVIS-style folders (fine-tuning on their own data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import davis
from ..data.synthetic import ClipSpec, generate_clip
from ..transforms import ImageTransforms


@dataclass(frozen=True)
class DataSettings:
    source: str = "synthetic"  # or the root of DAVIS-style folders (JPEGImages/, Annotations/)
    frames: int = 8  # per training clip
    images_per_step: int = 4  # the image stage's frames per optimiser step, each from its own clip
    max_objects: int = 3  # chosen among those visible on the clip's first frame
    max_stride: int = 3  # frames are taken every 1..max_stride frames of the video
    hflip: float = 0.5
    colour_jitter: float = 0.15  # brightness/contrast, the same for the whole clip
    synthetic: ClipSpec = field(default_factory=lambda: ClipSpec(num_frames=24))


class ClipSampler:
    def __init__(self, settings: DataSettings, image_size: int) -> None:
        self.settings = settings
        self.transforms = ImageTransforms(image_size)
        self.image_size = image_size

    @cached_property
    def _videos(self) -> list[tuple[str, list[Path]]]:
        """(name, frame paths) of each DAVIS-style video, listed once."""
        names = davis.video_names(self.settings.source)
        if not names:
            raise ValueError(f"no videos under {self.settings.source}/JPEGImages")
        return [(name, davis.frame_paths(self.settings.source, name)) for name in names]

    def _frames(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """Indices of a clip's frames in a video of `length`: every 1..max_stride frames from a random start."""
        s = self.settings
        stride = int(rng.integers(1, s.max_stride + 1))
        span = (s.frames - 1) * stride + 1
        if length < span:
            stride, span = 1, min(s.frames, length)
        start = int(rng.integers(0, length - span + 1))
        return np.arange(start, start + span, stride)

    def _clip(self, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Only the clip's frames are rendered or read, not the whole video (a DAVIS video is ~80 frames, an
        SA-V one hundreds; the image stage keeps one frame of 24)."""
        if self.settings.source == "synthetic":
            spec = self.settings.synthetic
            clip = generate_clip(seed, spec, self._frames(spec.num_frames, rng))
            return clip.frames, clip.masks
        name, paths = self._videos[int(rng.integers(len(self._videos)))]
        frames, masks, _ = davis.read_video(self.settings.source, name, self._frames(len(paths), rng), paths)
        return frames, masks

    def sample(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> images T x 3 x S x S (normalised), targets T x B x S x S bool; every object is
        visible on frame 0, where prompts go."""
        s = self.settings
        rng = np.random.default_rng(seed)
        for attempt in range(20):
            frames, masks = self._clip(rng, seed * 31 + attempt)
            visible = np.flatnonzero(masks[0].reshape(masks.shape[1], -1).sum(-1) >= 20)
            if len(visible):
                break
        else:
            raise ValueError(f"no clip with a visible object in 20 tries (source {s.source})")
        chosen = rng.choice(visible, min(s.max_objects, len(visible)), replace=False)
        masks = masks[:, chosen]
        if rng.random() < s.hflip:
            frames, masks = frames[:, :, ::-1], masks[..., ::-1]
        images = torch.stack([self.transforms.to_model_input(f) for f in frames])
        if s.colour_jitter:
            gain, shift = 1 + rng.uniform(-s.colour_jitter, s.colour_jitter, 2)
            images = images * gain + (shift - 1) / 0.226  # ~ brightness in [0, 1] units over ImageNet std
        targets = torch.from_numpy(np.ascontiguousarray(masks)).float()
        targets = F.interpolate(targets, size=(self.image_size, self.image_size), mode="nearest") > 0.5
        return images, targets
