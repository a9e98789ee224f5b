"""Oracle job: wall-clock timings of the reference image predictor, the baseline we race.

inputs: image (HxWx3 uint8, typically 1024x1024), repeats (int), point ([x, y], positive click).
outputs (float64 seconds, one per repeat, after one untimed warm-up of each call):
  set_image_s  predictor.set_image(image)
  predict_s    predictor.predict(point, label 1, multimask_output=True)
"""

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sam2.sam2_image_predictor import SAM2ImagePredictor


def _timed(fn: Callable[[], object], repeats: int) -> np.ndarray:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.asarray(times, dtype=np.float64)


def run(model: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    predictor = SAM2ImagePredictor(model)
    image = inputs["image"]
    repeats = int(inputs["repeats"])
    coords = np.asarray([inputs["point"]], dtype=np.float32)
    labels = np.ones(1, dtype=np.int32)
    set_image_s = _timed(lambda: predictor.set_image(image), repeats)
    predict_s = _timed(
        lambda: predictor.predict(point_coords=coords, point_labels=labels, multimask_output=True),
        repeats,
    )
    return {"set_image_s": set_image_s, "predict_s": predict_s}
