"""Image predictor with Meta's API: embed an image once, then predict masks from clicks, boxes
and mask prompts cheaply. Inputs are validated at the door with messages that say what is wrong."""

from __future__ import annotations

import numpy as np
import torch

from .modeling.mask_decoder import DecoderImage
from .modeling.sam2_base import SAM2Base
from .transforms import ImageTransforms

try:  # Pillow is optional: numpy arrays work without it.
    from PIL.Image import Image as PILImage
except ImportError:  # pragma: no cover
    PILImage = None


def as_rgb_array(image, what: str = "image") -> np.ndarray:
    """Accept an H x W x 3 uint8 array or a PIL image; anything else is a ValueError."""
    if PILImage is not None and isinstance(image, PILImage):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what} must be a numpy array or PIL image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what} must be an RGB image of shape H x W x 3 and dtype uint8, "
                         f"got shape {image.shape} dtype {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {image.shape}")
    return image


def _array(value, name: str, dtype) -> np.ndarray:
    try:
        arr = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not numeric: {exc}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


class SAM2ImagePredictor:
    def __init__(self, sam_model: SAM2Base, mask_threshold: float = 0.0, max_hole_area: float = 0.0,
                 max_sprinkle_area: float = 0.0, **kwargs) -> None:
        if kwargs:
            raise ValueError(f"unknown arguments: {sorted(kwargs)}")
        self.model = sam_model
        self.mask_threshold = mask_threshold
        self._transforms = ImageTransforms(sam_model.image_size, mask_threshold, max_hole_area, max_sprinkle_area)
        self.reset_predictor()

    @property
    def device(self) -> torch.device:
        return self.model.device

    def reset_predictor(self) -> None:
        self._features: dict | None = None
        self._prepared: dict[int, DecoderImage] = {}  # img_idx -> the decoder's work for clicks and boxes
        self._orig_hw: list[tuple[int, int]] = []
        self._is_image_set = False
        self._is_batch = False

    @torch.inference_mode()
    def _embed(self, images: list[np.ndarray]) -> None:
        batch = torch.stack([self._transforms.to_model_input(im, self.device) for im in images])
        feats = self.model.image_features(batch)
        embed = feats.vision + self.model.no_mem_embed.view(1, -1, 1, 1)
        self._features = {"image_embed": embed, "high_res_feats": feats.high_res}
        self._orig_hw = [im.shape[:2] for im in images]
        self._is_image_set = True

    def set_image(self, image) -> None:
        """Embed one H x W x 3 uint8 RGB image (numpy or PIL)."""
        image = as_rgb_array(image)
        self.reset_predictor()
        self._embed([image])

    def set_image_batch(self, image_list: list) -> None:
        """Embed several images (sizes may differ) in one backbone pass, for `predict_batch`."""
        if not isinstance(image_list, (list, tuple)) or not image_list:
            raise ValueError("set_image_batch expects a non-empty list of images")
        images = [as_rgb_array(im, f"image {i}") for i, im in enumerate(image_list)]
        self.reset_predictor()
        self._embed(images)
        self._is_batch = True

    def get_image_embedding(self) -> torch.Tensor:
        """B x C x h x w embedding of the current image(s), no-memory embedding included."""
        self._require_image()
        return self._features["image_embed"]

    def _require_image(self) -> None:
        if not self._is_image_set:
            raise ValueError("no image is set: call set_image(...) or set_image_batch(...) before predicting")

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, return_logits: bool = False, normalize_coords: bool = True):
        """Masks for one set of prompts (or B sets, with a leading batch axis on every prompt).

        point_coords: N x 2 (or B x N x 2) pixel xy of the original image (with
        normalize_coords=False, [0, 1] relative xy); point_labels: N (B x N), 1 positive, 0
        negative; box: 4 (B x 4) xyxy; mask_input: 1 x h x w (B x 1 x h x w) low-res logits from
        a previous call. Returns (masks C x H x W float32 0/1 or logits, iou C, low-res logits
        C x h x w clamped to +-32), with a leading B axis for batched prompts.
        """
        self._require_image()
        return self._predict_image(
            point_coords, point_labels, box, mask_input, multimask_output, return_logits, normalize_coords, -1
        )

    def predict_batch(self, point_coords_batch=None, point_labels_batch=None, box_batch=None,
                      mask_input_batch=None, multimask_output: bool = True, return_logits: bool = False,
                      normalize_coords: bool = True):
        """Per-image prompts after `set_image_batch`; returns lists of predict()'s outputs."""
        self._require_image()
        if not self._is_batch:
            raise ValueError("predict_batch needs images set with set_image_batch(...); use predict() after set_image")
        n = len(self._orig_hw)
        for name, value in (("point_coords_batch", point_coords_batch), ("point_labels_batch", point_labels_batch),
                            ("box_batch", box_batch), ("mask_input_batch", mask_input_batch)):
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} images")
        outputs = []
        for i in range(n):
            outputs.append(self._predict_image(
                point_coords_batch[i] if point_coords_batch is not None else None,
                point_labels_batch[i] if point_labels_batch is not None else None,
                box_batch[i] if box_batch is not None else None,
                mask_input_batch[i] if mask_input_batch is not None else None,
                multimask_output, return_logits, normalize_coords, i,
            ))
        masks, ious, low_res = (list(x) for x in zip(*outputs, strict=True))
        return masks, ious, low_res

    def _prompts(self, point_coords, point_labels, box, mask_input, normalize_coords, img_idx):
        """Validate and convert prompts to model-input tensors: (coords B x N x 2, labels B x N),
        boxes B x 2 x 2, mask B x 1 x h x w."""
        h, w = self._orig_hw[img_idx]
        limit = (1.0, 1.0) if not normalize_coords else (w, h)
        coords = labels = boxes = masks = None
        if (point_coords is None) != (point_labels is None):
            raise ValueError("point_coords and point_labels must be given together")
        if point_coords is not None:
            pts = _array(point_coords, "point_coords", np.float32)
            lab = _array(point_labels, "point_labels", np.float64)
            if pts.ndim not in (2, 3) or pts.shape[-1] != 2:
                raise ValueError(f"point_coords must have shape N x 2 or B x N x 2, got {pts.shape}")
            if lab.shape != pts.shape[:-1]:
                raise ValueError(f"point_labels shape {lab.shape} does not match point_coords shape {pts.shape}")
            if not np.isin(lab, (-1, 0, 1, 2, 3)).all():
                raise ValueError("point_labels must be 1 (positive), 0 (negative) or -1 (padding), "
                                 f"got {np.unique(lab)}")
            self._check_inside(pts, limit, "point")
            coords = self._transforms.transform_coords(torch.as_tensor(pts, device=self.device),
                                                       normalize_coords, (h, w))
            labels = torch.as_tensor(lab, dtype=torch.int, device=self.device)
            if coords.ndim == 2:
                coords, labels = coords[None], labels[None]
        if box is not None:
            bx = _array(box, "box", np.float32)
            if bx.shape[-1:] != (4,) or bx.ndim not in (1, 2):
                raise ValueError(f"box must have shape 4 (x0, y0, x1, y1) or B x 4, got {bx.shape}")
            if np.any(bx[..., 2] < bx[..., 0]) or np.any(bx[..., 3] < bx[..., 1]):
                raise ValueError(f"box must be x0, y0, x1, y1 with x1 >= x0 and y1 >= y0, got {bx.tolist()}")
            self._check_inside(bx.reshape(-1, 2), limit, "box corner")
            boxes = self._transforms.transform_boxes(torch.as_tensor(bx, device=self.device), normalize_coords, (h, w))
            if coords is not None and coords.shape[0] != boxes.shape[0]:
                raise ValueError(f"{boxes.shape[0]} boxes but {coords.shape[0]} sets of points")
        if mask_input is not None:
            m = _array(mask_input, "mask_input", np.float32)
            side = self.model.sam_prompt_encoder.mask_input_size
            if m.ndim == 3:
                m = m[None]
            if m.ndim != 4 or m.shape[1:] != (1, *side):
                raise ValueError(f"mask_input must have shape 1 x {side[0]} x {side[1]} (low-res logits "
                                 f"from a previous predict), optionally with a batch axis; got {np.shape(mask_input)}")
            masks = torch.as_tensor(m, device=self.device)
        return coords, labels, boxes, masks

    @staticmethod
    def _check_inside(points: np.ndarray, limit: tuple[float, float], what: str) -> None:
        xy = points.reshape(-1, 2)
        outside = (xy[:, 0] < 0) | (xy[:, 0] > limit[0]) | (xy[:, 1] < 0) | (xy[:, 1] > limit[1])
        if outside.any():
            bad = xy[outside][0].tolist()
            raise ValueError(f"{what} {bad} lies outside the image (x in [0, {limit[0]}], y in [0, {limit[1]}])")

    @torch.inference_mode()
    def _predict_image(self, point_coords, point_labels, box, mask_input, multimask_output,
                       return_logits, normalize_coords, img_idx):
        coords, labels, boxes, masks = self._prompts(point_coords, point_labels, box, mask_input,
                                                     normalize_coords, img_idx)
        low_res, iou = self._decode(coords, labels, boxes, masks, multimask_output, img_idx)
        out = self._transforms.postprocess_masks(low_res, self._orig_hw[img_idx])
        if not return_logits:
            out = out > self.mask_threshold
        low_res = torch.clamp(low_res, -32.0, 32.0)
        # A single prompt set drops its batch axis; B sets keep it (as Meta's predictor does).
        return tuple(t.squeeze(0).float().cpu().numpy() for t in (out, iou, low_res))

    def _decode(self, coords, labels, boxes, masks, multimask_output, img_idx):
        """Prompt encoder + mask decoder against the cached embedding -> (B x C x h x w, B x C)."""
        if boxes is not None:
            # Box corners become the first two points, labelled 2 and 3.
            box_labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device).repeat(boxes.shape[0], 1)
            if coords is not None:
                coords, labels = torch.cat([boxes, coords], dim=1), torch.cat([box_labels, labels], dim=1)
            else:
                coords, labels = boxes, box_labels
        points = (coords, labels) if coords is not None else None
        model = self.model
        sparse, dense = model.sam_prompt_encoder(points=points, masks=masks)
        batched = coords is not None and coords.shape[0] > 1
        high_res = [level[img_idx].unsqueeze(0) for level in self._features["high_res_feats"]]
        embed = self._features["image_embed"][img_idx].unsqueeze(0)
        image = None
        if masks is None:  # the image's prompt-free decoder work, once per image
            if img_idx not in self._prepared:
                self._prepared[img_idx] = model.prepare_for_clicks(embed, high_res)
            image = self._prepared[img_idx]
        low_res, iou, _, _ = model.sam_mask_decoder(
            image_embeddings=embed,
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=batched,
            high_res_features=high_res,
            image=image,
        )
        return low_res, iou
