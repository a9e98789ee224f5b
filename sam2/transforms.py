"""Model preprocessing and mask post-processing shared by the predictors.

Images are squashed (no aspect-ratio padding) to the model's square input with antialiased
bilinear resampling, then normalised with ImageNet statistics; masks go back to the original
size with plain bilinear upsampling of the low-res logits.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .frames import check_frame
from .mask_cleanup import clean_mask_logits

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


_MEAN = torch.tensor(MEAN, dtype=torch.float32).view(3, 1, 1)
_STD = torch.tensor(STD, dtype=torch.float32).view(3, 1, 1)


def video_frame_to_input(frame: np.ndarray, image_size: int) -> torch.Tensor:
    """H x W x 3 uint8 RGB -> 3 x S x S float32, computed as Meta's video predictor does for JPEG
    frames: PIL bicubic resize (a copy when the size already matches), uint8 / 255.0 in float64,
    stored as float32, then (x - mean) / std in float32."""
    check_frame(frame, "video frame", None)
    image = Image.fromarray(frame).resize((image_size, image_size), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(image) / 255.0).permute(2, 0, 1).float().contiguous()
    return (x - _MEAN) / _STD


class ImageTransforms:
    def __init__(self, resolution: int, mask_threshold: float = 0.0, max_hole_area: float = 0.0,
                 max_sprinkle_area: float = 0.0) -> None:
        self.resolution = resolution
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self._mean = torch.tensor(MEAN).view(-1, 1, 1)
        self._std = torch.tensor(STD).view(-1, 1, 1)

    def to_model_input(self, image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """H x W x 3 uint8 RGB -> 3 x S x S normalised float32."""
        x = torch.from_numpy(np.require(image, requirements=["C", "W"])).to(device).permute(2, 0, 1).float().div(255)
        if x.shape[1:] != (self.resolution, self.resolution):
            x = F.interpolate(x[None], (self.resolution, self.resolution), mode="bilinear",
                              align_corners=False, antialias=True)[0]
        return (x - self._mean.to(x.device)) / self._std.to(x.device)

    def transform_coords(self, coords: torch.Tensor, normalize: bool, orig_hw: tuple[int, int]) -> torch.Tensor:
        """Pixel (x, y) of the original image (or [0, 1] when normalize=False) -> model-input pixels."""
        if normalize:
            h, w = orig_hw
            coords = coords.clone()
            coords[..., 0] = coords[..., 0] / w
            coords[..., 1] = coords[..., 1] / h
        return coords * self.resolution

    def transform_boxes(self, boxes: torch.Tensor, normalize: bool, orig_hw: tuple[int, int]) -> torch.Tensor:
        """... x 4 xyxy -> B x 2 x 2 corner points in model-input pixels."""
        return self.transform_coords(boxes.reshape(-1, 2, 2), normalize, orig_hw)

    def postprocess_masks(self, masks: torch.Tensor, orig_hw: tuple[int, int]) -> torch.Tensor:
        """B x C x h x w low-res logits -> B x C x H x W logits at the original size, with small
        background holes filled and small foreground specks removed when asked."""
        masks = clean_mask_logits(masks.float(), self.max_hole_area, self.max_sprinkle_area, self.mask_threshold)
        return F.interpolate(masks, orig_hw, mode="bilinear", align_corners=False)
