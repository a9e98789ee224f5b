"""Automatic mask generation with Meta's API (`SAM2AutomaticMaskGenerator`): masks for a whole
image from a grid of single-click prompts, filtered by predicted IoU and stability, de-duplicated
with box NMS within and across crops. Records and numbers equal Meta's; it is faster and lighter:

- each batch of clicks is one decoder call against the image's cached prompt-free decoder work;
- masks stay as low-res logits (256 x 256 for a 1024 px model) through the IoU filter; only the
  survivors are upsampled to the crop, in bounded chunks, for the stability score, the box and
  the edge filter (Meta upsamples every mask of a batch); NMS needs only boxes, so full-size masks
  are made once, for the records that remain;
- small-region clean-up (min_mask_region_area) works on any device, with no compiled extension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from .mask_boxes import batched_nms, box_area, masks_to_boxes
from .mask_cleanup import clean_mask_logits
from .modeling.sam2_base import SAM2Base
from .sam2_image_predictor import SAM2ImagePredictor, as_rgb_array

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
# A mask whose box comes this close (pixels) to a crop's inner edge is cut by the crop: dropped.
EDGE_TOLERANCE = 20.0
# Upsampled logits held at once: chunks of masks with at most this many pixels in all (128 MiB fp32).
_CHUNK_PIXELS = 1 << 25


def point_grid(n_per_side: int) -> np.ndarray:
    """n^2 x 2 float64 (x, y) cell centres of an n x n grid over [0, 1]^2, x varying fastest."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_point_grids(n_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One grid per crop layer (0 = the whole image); layer i has n / downscale^i points per side."""
    return [point_grid(int(n_per_side / (downscale**i))) for i in range(n_layers + 1)]


def crop_boxes(height: int, width: int, n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """xyxy crop boxes and their layers: the whole image (layer 0), then for layer i a 2^i x 2^i
    grid of crops overlapping by `overlap_ratio` of the short side, scaled by 2 / 2^i."""
    boxes, layers = [[0, 0, width, height]], [0]
    short_side = min(height, width)
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = math.ceil((overlap * (per_side - 1) + width) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + height) / per_side)
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0 in x0s:  # x outer, y inner: the order crops are processed and records tie-break in
            for y0 in y0s:
                boxes.append([x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)])
                layers.append(layer)
    return boxes, layers


@dataclass
class _Masks:
    """Candidate masks of one crop (or of the image, once crops are merged); K rows each.

    low_res: K x h x w logits, small regions already cleaned; boxes: K x 4 int64 xyxy, inclusive,
    in crop pixels until `_crop_masks` moves them to the image; points: K x 2 float32 likewise.
    """

    low_res: torch.Tensor
    iou: torch.Tensor
    stability: torch.Tensor
    boxes: torch.Tensor
    points: torch.Tensor
    crop: torch.Tensor  # K int64: index of the crop box

    def take(self, keep: torch.Tensor) -> _Masks:
        return _Masks(*(getattr(self, f.name)[keep] for f in fields(self)))

    @staticmethod
    def cat(parts: list[_Masks]) -> _Masks:
        return _Masks(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(_Masks)))

    def __len__(self) -> int:
        return self.iou.shape[0]


class SAM2AutomaticMaskGenerator:
    def __init__(
        self,
        model: SAM2Base,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
        **kwargs,
    ) -> None:
        """Masks for every object of an image, from a grid of clicks.

        points_per_side: an n x n click grid (n / downscale^i on crop layer i); or `point_grids`,
        one (k, 2) array of [0, 1] (x, y) positions per layer; exactly one of the two is given.
        points_per_batch: clicks decoded together (memory against speed).
        pred_iou_thresh / stability_score_thresh: keep masks whose predicted IoU is above, and whose
        stability (IoU of the mask thresholded at mask_threshold +- stability_score_offset) is at
        least, the threshold (0 switches a filter off). box_nms_thresh / crop_nms_thresh: box IoU
        above which a mask duplicates a better one, within a crop (score: predicted IoU) and across
        crops (the smaller crop wins). crop_n_layers: extra layers of 2^i x 2^i overlapping crops.
        min_mask_region_area: holes and specks up to this area (in low-res mask pixels) are filled
        and removed, as Meta's predictor does. output_mode: "binary_mask" (H x W bool),
        "uncompressed_rle" ({"size": [h, w], "counts": column-major runs, zeros first}) or
        "coco_rle" (pycocotools' compressed RLE, counts as a str). use_m2m: refine each mask once
        with itself as mask prompt. multimask_output: three masks per click, else one.
        """
        if kwargs:
            raise ValueError(f"unknown arguments: {sorted(kwargs)}")
        if not isinstance(model, SAM2Base):
            raise ValueError(f"model must be a SAM 2 model (build_sam2(...)), got {type(model).__name__}")
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids "
                             f"(got points_per_side={points_per_side!r} and point_grids "
                             f"{'set' if point_grids is not None else 'None'})")
        _check_int("points_per_batch", points_per_batch, 1)
        _check_int("crop_n_layers", crop_n_layers, 0)
        _check_int("crop_n_points_downscale_factor", crop_n_points_downscale_factor, 1)
        for name, value, low, high in (
            ("pred_iou_thresh", pred_iou_thresh, -math.inf, math.inf),
            ("stability_score_thresh", stability_score_thresh, -math.inf, math.inf),
            ("stability_score_offset", stability_score_offset, 0.0, math.inf),
            ("mask_threshold", mask_threshold, -math.inf, math.inf),
            ("box_nms_thresh", box_nms_thresh, 0.0, 1.0),
            ("crop_nms_thresh", crop_nms_thresh, 0.0, 1.0),
            ("crop_overlap_ratio", crop_overlap_ratio, 0.0, 1.0),
            ("min_mask_region_area", min_mask_region_area, 0.0, math.inf),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
        for name, value in (("use_m2m", use_m2m), ("multimask_output", multimask_output)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
        if output_mode == "coco_rle":
            from . import rle  # noqa: F401  (needs pycocotools: fail here, not after the work)
        if points_per_side is not None:
            _check_int("points_per_side", points_per_side, 1)
            if int(points_per_side / crop_n_points_downscale_factor**crop_n_layers) < 1:
                raise ValueError(f"points_per_side {points_per_side} leaves no point on crop layer {crop_n_layers} "
                                 f"(downscale factor {crop_n_points_downscale_factor})")
            self.point_grids = layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        else:
            self.point_grids = _checked_grids(point_grids, crop_n_layers)

        self.predictor = SAM2ImagePredictor(model, max_hole_area=min_mask_region_area,
                                            max_sprinkle_area=min_mask_region_area)
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.crop_n_points_downscale_factor = crop_n_points_downscale_factor
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    @torch.inference_mode()
    def generate(self, image) -> list[dict]:
        """Masks of an H x W x 3 uint8 RGB image (numpy or PIL), in Meta's order: by decreasing
        predicted IoU; with crop layers, masks from smaller crops first.

        Each record: segmentation (per output_mode), area (pixels), bbox [x, y, w, h] (w, h from
        inclusive corners, as Meta's), predicted_iou, point_coords [[x, y]] (the click),
        stability_score, crop_box [x, y, w, h].
        """
        image = as_rgb_array(image)
        height, width = image.shape[:2]
        boxes, layers = crop_boxes(height, width, self.crop_n_layers, self.crop_overlap_ratio)
        masks = _Masks.cat([self._crop_masks(image, k, box, layer)
                            for k, (box, layer) in enumerate(zip(boxes, layers, strict=True))])
        crops = torch.as_tensor(boxes, dtype=torch.int64, device=self.device)
        if len(boxes) > 1:
            # The same object found in several crops: keep the mask from the smallest crop.
            scores = 1 / box_area(crops[masks.crop])
            masks = masks.take(batched_nms(masks.boxes.float(), scores, torch.zeros_like(masks.crop),
                                           self.crop_nms_thresh))
        return self._records(masks, boxes, (height, width))

    def _crop_masks(self, image: np.ndarray, index: int, crop_box: list[int], layer: int) -> _Masks:
        x0, y0, x1, y1 = crop_box
        self.predictor.set_image(image[y0:y1, x0:x1])
        crop_hw = (y1 - y0, x1 - x0)
        points = torch.as_tensor(self.point_grids[layer] * np.array([[crop_hw[1], crop_hw[0]]]),
                                 dtype=torch.float32, device=self.device)
        parts = [self._batch_masks(points[i : i + self.points_per_batch], crop_hw, crop_box, image.shape[:2])
                 for i in range(0, len(points), self.points_per_batch)]
        self.predictor.reset_predictor()
        masks = _Masks.cat(parts)
        masks = masks.take(batched_nms(masks.boxes.float(), masks.iou, torch.zeros_like(masks.crop),
                                       self.box_nms_thresh))
        offset = torch.tensor([x0, y0], device=self.device)
        masks.boxes = masks.boxes + offset.repeat(2)
        masks.points = masks.points + offset
        masks.crop = torch.full_like(masks.crop, index)
        return masks

    def _batch_masks(self, points: torch.Tensor, crop_hw: tuple[int, int], crop_box: list[int],
                     image_hw: tuple[int, int]) -> _Masks:
        """points: P x 2 float32 crop pixels -> the masks of their clicks that pass every filter."""
        predictor = self.predictor
        coords = predictor._transforms.transform_coords(points, True, crop_hw)[:, None]  # P x 1 x 2
        labels = torch.ones(coords.shape[:2], dtype=torch.int, device=self.device)
        low_res, iou = predictor._decode(coords, labels, None, None, self.multimask_output, 0)  # P x C x h x w, P x C
        per_point = low_res.shape[1]
        low_res, iou = low_res.flatten(0, 1), iou.flatten(0, 1)
        coords, points = coords.repeat_interleave(per_point, 0), points.repeat_interleave(per_point, 0)
        if self.use_m2m:
            low_res, iou = self._refine(coords, low_res)
        keep = torch.arange(len(iou), device=self.device)
        if self.pred_iou_thresh > 0:
            keep = keep[iou > self.pred_iou_thresh]
        tf = predictor._transforms
        low_res = clean_mask_logits(low_res[keep].float(), tf.max_hole_area, tf.max_sprinkle_area, tf.mask_threshold)
        stability, boxes, survivors = self._upsampled_filters(low_res, crop_hw)
        keep, low_res = keep[survivors], low_res[survivors]
        near = _near_crop_edge(boxes, crop_box, image_hw)
        keep, low_res, boxes = keep[~near], low_res[~near], boxes[~near]
        return _Masks(low_res, iou[keep], stability[~near], boxes, points[keep],
                      torch.zeros(len(keep), dtype=torch.int64, device=self.device))

    def _refine(self, coords: torch.Tensor, low_res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each mask decoded again from its click with its own low-res logits as mask prompt, one
        mask out: N x 1 x 2 coords, N x h x w logits -> (N x h x w, N)."""
        labels = torch.ones(coords.shape[:2], dtype=torch.int, device=self.device)
        prompts = torch.clamp(low_res, -32.0, 32.0)[:, None]
        out = [self.predictor._decode(coords[i : i + self.points_per_batch], labels[i : i + self.points_per_batch],
                                      None, prompts[i : i + self.points_per_batch], False, 0)
               for i in range(0, len(coords), self.points_per_batch)]
        return torch.cat([m for m, _ in out])[:, 0], torch.cat([s for _, s in out])[:, 0]

    def _upsampled_filters(self, low_res: torch.Tensor,
                           crop_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """low_res: K x h x w -> (stability K', boxes K' x 4, survivors K bool) for the K' masks that
        pass the stability filter, all measured on the logits upsampled to the crop."""
        t, offset = self.mask_threshold, self.stability_score_offset
        stability, boxes, survivors = [], [], []
        chunk = max(1, _CHUNK_PIXELS // (crop_hw[0] * crop_hw[1]))
        for i in range(0, len(low_res), chunk):
            logits = _upsample(low_res[i : i + chunk], crop_hw)
            # float32 ratio of the integer counts, as Meta divides them (NaN for two empty masks)
            score = _count_above(logits, t + offset).float() / _count_above(logits, t - offset).float()
            if self.stability_score_thresh > 0:
                ok = score >= self.stability_score_thresh
            else:
                ok = torch.ones_like(score, dtype=torch.bool)
            stability.append(score[ok])
            boxes.append(masks_to_boxes(logits[ok], t))
            survivors.append(ok)
        if not survivors:
            empty = torch.zeros(0, device=self.device)
            return empty, torch.zeros((0, 4), dtype=torch.int64, device=self.device), empty.bool()
        return torch.cat(stability), torch.cat(boxes), torch.cat(survivors)

    def _records(self, masks: _Masks, boxes: list[list[int]], image_hw: tuple[int, int]) -> list[dict]:
        height, width = image_hw
        segmentations: list = [None] * len(masks)
        areas: list = [0] * len(masks)
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            rows = torch.nonzero(masks.crop == k).flatten()
            chunk = max(1, _CHUNK_PIXELS // ((y1 - y0) * (x1 - x0)))
            for i in range(0, len(rows), chunk):
                idx = rows[i : i + chunk]
                logits = _upsample(masks.low_res[idx], (y1 - y0, x1 - x0))
                counts = _count_above(logits, self.mask_threshold).tolist()
                binary = logits > self.mask_threshold
                del logits
                if (x0, y0, x1, y1) != (0, 0, width, height):
                    binary = F.pad(binary, (x0, width - x1, y0, height - y1))
                for j, seg in zip(idx.tolist(), self._encode(binary), strict=True):
                    segmentations[j] = seg
                for j, area in zip(idx.tolist(), counts, strict=True):
                    areas[j] = int(area)
        xywh = masks.boxes.clone()
        xywh[:, 2:] -= xywh[:, :2]
        crops = torch.as_tensor(boxes, dtype=torch.int64)[masks.crop.cpu()]
        crops[:, 2:] -= crops[:, :2]
        return [
            {"segmentation": seg, "area": area, "bbox": bbox, "predicted_iou": iou, "point_coords": [point],
             "stability_score": stab, "crop_box": crop}
            for seg, area, bbox, iou, point, stab, crop in zip(
                segmentations, areas, xywh.tolist(), masks.iou.tolist(), masks.points.tolist(),
                masks.stability.tolist(), crops.tolist(), strict=True)
        ]

    def _encode(self, binary: torch.Tensor) -> list:
        """N x H x W bool (full image) -> one segmentation per mask, in the output mode's format."""
        if self.output_mode == "binary_mask":
            return list(binary.cpu().numpy())
        height, width = binary.shape[1:]
        if self.output_mode == "uncompressed_rle":
            return [{"size": [height, width], "counts": c} for c in uncompressed_rle_counts(binary)]
        from . import rle

        return [{"size": [height, width], "counts": rle.encode(m).decode("utf-8")} for m in binary.cpu().numpy()]


def uncompressed_rle_counts(masks: torch.Tensor) -> list[list[int]]:
    """N x H x W bool -> per mask the run lengths of its column-major pixels, starting with a run
    of zeros (of length 0 when the first pixel is set), as COCO's uncompressed RLE."""
    n = masks.shape[0]
    flat = masks.transpose(1, 2).reshape(n, -1)
    size = flat.shape[1]
    mask_idx, pos = torch.nonzero(flat[:, 1:] != flat[:, :-1], as_tuple=True)
    per_mask = torch.bincount(mask_idx, minlength=n).tolist()
    starts = flat[:, 0].tolist()
    ends = (pos + 1).cpu().numpy()
    out, at = [], 0
    for k in range(n):
        bounds = np.concatenate([[0], ends[at : at + per_mask[k]], [size]])
        at += per_mask[k]
        runs = np.diff(bounds).tolist()
        out.append([0, *runs] if starts[k] else runs)
    return out


def _count_above(logits: torch.Tensor, level: float) -> torch.Tensor:
    """K x H x W -> K int64: how many values of each mask are above `level`."""
    above = logits > level
    if above.device.type == "cpu":  # numpy counts bytes several times faster than torch's bool sum on CPU
        return torch.from_numpy(np.count_nonzero(above.reshape(len(above), -1).numpy(), axis=1).astype(np.int64))
    return above.sum(dim=(1, 2), dtype=torch.int64)


def _upsample(low_res: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """K x h x w low-res logits -> K x H x W, bilinear as the image predictor's output masks."""
    return F.interpolate(low_res[:, None], hw, mode="bilinear", align_corners=False)[:, 0]


def _near_crop_edge(boxes: torch.Tensor, crop_box: list[int], image_hw: tuple[int, int]) -> torch.Tensor:
    """K x 4 crop-pixel boxes -> K bool: within EDGE_TOLERANCE of a crop edge that is not the image's."""
    x0, y0 = crop_box[:2]
    crop = torch.tensor(crop_box, dtype=torch.float32, device=boxes.device)
    image = torch.tensor([0, 0, image_hw[1], image_hw[0]], dtype=torch.float32, device=boxes.device)
    uncropped = (boxes + torch.tensor([x0, y0, x0, y0], device=boxes.device)).float()
    near_crop = (uncropped - crop).abs() <= EDGE_TOLERANCE
    near_image = (uncropped - image).abs() <= EDGE_TOLERANCE
    return (near_crop & ~near_image).any(dim=1)


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _checked_grids(point_grids, crop_n_layers: int) -> list[np.ndarray]:
    if not isinstance(point_grids, (list, tuple)) or len(point_grids) != crop_n_layers + 1:
        raise ValueError(f"point_grids must be a list of crop_n_layers + 1 = {crop_n_layers + 1} arrays (one per "
                         f"crop layer), got {type(point_grids).__name__} of length {len(point_grids)}"
                         if isinstance(point_grids, (list, tuple)) else
                         f"point_grids must be a list of arrays, got {type(point_grids).__name__}")
    grids = []
    for i, grid in enumerate(point_grids):
        try:
            arr = np.asarray(grid, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"point_grids[{i}] is not numeric: {exc}") from exc
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
            raise ValueError(f"point_grids[{i}] must have shape k x 2 (x, y) with k >= 1, got {arr.shape}")
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"point_grids[{i}] must hold (x, y) positions in [0, 1] (relative to the crop)")
        grids.append(arr)
    return grids
