"""Oracle job: the reference SAM2AutomaticMaskGenerator's records, and how long generate() took.

The model comes from `build_sam2` with its defaults; pass `++model.image_size=256` (or 512) as an
override for a cheap run. Two things are adapted so that the reference runs here at all:

- its image predictor hard-codes the backbone feature sizes of a 1024 px model; they are set
  from the model's image_size (the values it would have, were they not hard-coded);
- on CPU its small-region clean-up (min_mask_region_area, passed to the predictor as hole and
  sprinkle area) needs the CUDA extension and is silently skipped; `connected_components` true
  swaps in an 8-connected labelling computed with scipy, which is the extension's contract
  (labels and the area of each pixel's component, N x 1 x H x W int32).

inputs:
  images  list of HxWx3 uint8 arrays
  runs    list of {"name", "image" (index), "options" (SAM2AutomaticMaskGenerator keyword
          arguments; point_grids as lists of (n, 2) arrays), "repeats" (default 1: generate()
          calls, the records of the last one are kept)}
  connected_components  optional bool, default false

outputs for each run `name`, N records in the reference's order:
  {name}.seconds (repeats,) float64   wall time of each generate() call
  {name}.area (N,) int64; {name}.bbox (N, 4) float64 XYWH; {name}.predicted_iou (N,) float64;
  {name}.point_coords (N, 2) float64; {name}.stability_score (N,) float64;
  {name}.crop_box (N, 4) float64 XYWH
  segmentation, by output_mode:
    binary_mask       {name}.masks (N, H, W) uint8, also {name}.mask_dtype () the records' dtype
    uncompressed_rle  {name}.sizes (N, 2) int64, {name}.counts (sum of lengths,) int64,
                      {name}.lengths (N,) int64 (one record's counts after another)
    coco_rle          {name}.sizes (N, 2) int64, {name}.coco_counts (N,) unicode strings
"""

import time
from typing import Any

import numpy as np
import torch
from scipy import ndimage

import sam2.utils.misc
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator


def _connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N x 1 x H x W bool -> (labels, component area per pixel), both N x 1 x H x W int32."""
    flat = mask.detach().cpu().numpy().astype(bool).reshape(-1, *mask.shape[-2:])
    labels = np.zeros(flat.shape, dtype=np.int32)
    areas = np.zeros(flat.shape, dtype=np.int32)
    for i, m in enumerate(flat):
        lab, count = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
        if count:
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            labels[i], areas[i] = lab, sizes[lab]
    shape = mask.shape
    return torch.from_numpy(labels).view(shape), torch.from_numpy(areas).view(shape)


def _records(name: str, records: list[dict[str, Any]], mode: str) -> dict[str, np.ndarray]:
    out = {
        f"{name}.area": np.asarray([r["area"] for r in records], dtype=np.int64),
        f"{name}.bbox": np.asarray([r["bbox"] for r in records], dtype=np.float64).reshape(-1, 4),
        f"{name}.predicted_iou": np.asarray([r["predicted_iou"] for r in records], dtype=np.float64),
        f"{name}.point_coords": np.asarray(
            [r["point_coords"][0] for r in records], dtype=np.float64
        ).reshape(-1, 2),
        f"{name}.stability_score": np.asarray(
            [r["stability_score"] for r in records], dtype=np.float64
        ),
        f"{name}.crop_box": np.asarray([r["crop_box"] for r in records], dtype=np.float64).reshape(
            -1, 4
        ),
    }
    segs = [r["segmentation"] for r in records]
    if mode == "binary_mask":
        out[f"{name}.masks"] = np.asarray(segs, dtype=np.uint8)
        out[f"{name}.mask_dtype"] = np.asarray(str(segs[0].dtype) if segs else "")
    else:
        out[f"{name}.sizes"] = np.asarray([s["size"] for s in segs], dtype=np.int64).reshape(-1, 2)
        if mode == "uncompressed_rle":
            out[f"{name}.lengths"] = np.asarray([len(s["counts"]) for s in segs], dtype=np.int64)
            out[f"{name}.counts"] = np.asarray(
                [c for s in segs for c in s["counts"]], dtype=np.int64
            )
        else:
            out[f"{name}.coco_counts"] = np.asarray([s["counts"] for s in segs], dtype=str)
    return out


def run(model: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    if inputs.get("connected_components"):
        sam2.utils.misc.get_connected_components = _connected_components
    side = model.image_size // 4
    feat_sizes = [(side, side), (side // 2, side // 2), (side // 4, side // 4)]
    out: dict[str, np.ndarray] = {}
    for run_spec in inputs["runs"]:
        options = dict(run_spec.get("options", {}))
        if options.get("point_grids") is not None:
            options["point_grids"] = [np.asarray(g, dtype=np.float64) for g in options["point_grids"]]
        generator = SAM2AutomaticMaskGenerator(model, **options)
        generator.predictor._bb_feat_sizes = feat_sizes
        image = inputs["images"][run_spec["image"]]
        seconds = []
        for _ in range(int(run_spec.get("repeats", 1))):
            start = time.perf_counter()
            records = generator.generate(image)
            seconds.append(time.perf_counter() - start)
        name = run_spec["name"]
        out[f"{name}.seconds"] = np.asarray(seconds, dtype=np.float64)
        out.update(_records(name, records, options.get("output_mode", "binary_mask")))
    return out
