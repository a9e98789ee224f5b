"""`sam2-ray segment`: one image, point and box prompts, the best mask and an overlay."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError

from pipelines.errors import InvalidInput
from sam2.build_sam import build_sam2
from sam2.checkpoint import BUNDLED
from sam2.sam2_image_predictor import SAM2ImagePredictor

MASK_COLOUR = (30, 144, 255)
POINT_COLOURS = {1: (0, 200, 0), 0: (230, 0, 0)}  # positive green, negative red
BOX_COLOUR = (255, 255, 255)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImagePrompt:
    """Points (pixel xy of the image) with labels 1 positive / 0 negative, and an xyxy box."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self):
        if not self.points and self.box is None:
            raise InvalidInput("give at least one point or a box")
        if len(self.points) != len(self.labels):
            raise InvalidInput(f"{len(self.points)} points but {len(self.labels)} labels")

    def check_inside(self, width: int, height: int) -> None:
        for x, y in self.points:
            if not (0 <= x < width and 0 <= y < height):
                raise InvalidInput(f"point {x:g},{y:g} is outside the {width}x{height} image")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise InvalidInput(
                    f"box {x0:g},{y0:g},{x1:g},{y1:g} is not inside the {width}x{height} image "
                    "with x0 < x1 and y0 < y1"
                )


@dataclass(frozen=True)
class SegmentResult:
    mask_path: Path
    overlay_path: Path
    iou: float


def load_image(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB."""
    if not path.is_file():
        raise InvalidInput(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except UnidentifiedImageError:
        raise InvalidInput(f"not an image Pillow can read: {path}") from None


def predict_mask(
    image: np.ndarray, prompt: ImagePrompt, model: str | None, checkpoint: Path | None, seed: int
) -> tuple[np.ndarray, float]:
    """The best of the predicted masks (H x W bool) and its predicted IoU. Without a model name
    the config is inferred from the checkpoint; without either, the bundled model runs."""
    if model is None and checkpoint is None:
        model, checkpoint = "sam2.1_hiera_mini", Path(BUNDLED)
    torch.manual_seed(seed)  # without a checkpoint the weights are this seed's random init
    try:
        sam = build_sam2(model, ckpt_path=checkpoint, device="cpu")
    except (ValueError, FileNotFoundError) as error:  # unknown config, unreadable/unfitting checkpoint
        raise InvalidInput(str(error)) from None
    if checkpoint is None:
        log.warning(
            "no checkpoint given: the model has random weights (seed %d), so its masks mean "
            "nothing. Pass --checkpoint PATH (e.g. Meta's sam2.1_hiera_tiny.pt), or leave out "
            "--model for the bundled trained model.",
            seed,
        )
    predictor = SAM2ImagePredictor(sam)
    predictor.set_image(image)
    has_points = bool(prompt.points)
    masks, ious, _ = predictor.predict(
        point_coords=np.array(prompt.points, dtype=np.float32) if has_points else None,
        point_labels=np.array(prompt.labels, dtype=np.int32) if has_points else None,
        box=None if prompt.box is None else np.array(prompt.box, dtype=np.float32),
        # one click is ambiguous (part / whole / group): let SAM propose several, keep the best
        multimask_output=len(prompt.points) == 1 and prompt.box is None,
    )
    best = int(np.argmax(ious))
    return masks[best] > 0, float(ious[best])


def render_overlay(image: np.ndarray, mask: np.ndarray, prompt: ImagePrompt) -> Image.Image:
    tinted = np.where(mask[..., None], 0.5 * image + 0.5 * np.array(MASK_COLOUR), image)
    overlay = Image.fromarray(tinted.astype(np.uint8))
    draw = ImageDraw.Draw(overlay)
    if prompt.box is not None:
        draw.rectangle(prompt.box, outline=BOX_COLOUR, width=2)
    for (x, y), label in zip(prompt.points, prompt.labels, strict=True):
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=POINT_COLOURS[label], outline="white")
    return overlay


def segment(
    image_path: Path,
    prompt: ImagePrompt,
    model: str | None,
    checkpoint: Path | None,
    out_dir: Path,
    seed: int,
) -> SegmentResult:
    image = load_image(image_path)
    prompt.check_inside(width=image.shape[1], height=image.shape[0])
    mask, iou = predict_mask(image, prompt, model, checkpoint, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = SegmentResult(
        mask_path=out_dir / f"{image_path.stem}_mask.png",
        overlay_path=out_dir / f"{image_path.stem}_overlay.png",
        iou=iou,
    )
    Image.fromarray(mask.astype(np.uint8) * 255).save(result.mask_path)
    render_overlay(image, mask, prompt).save(result.overlay_path)
    return result
