"""Request and response bodies of the HTTP API. Shapes, ranges and pairings are checked here, so that a
malformed request ends in a 422 that names the field; what needs the image or video (a point outside it, an
unknown session) is checked by the replica that holds it.

Coordinates are pixels of the original image or frame, x right and y down; boxes are x0, y0, x1, y1;
masks travel as COCO RLE (column-major, compressed counts as a string) or as base64 PNG (0/255).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_POINTS = 64
IMAGE_ID = r"^[0-9a-f]{64}$"  # sha256 of the image file's bytes
SESSION_ID = r"^[0-9]{1,3}-[0-9a-f]{32}$"  # model index - random

Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]
Point = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]
Box = Annotated[list[Coordinate], Field(min_length=4, max_length=4, description="x0, y0, x1, y1 pixels")]
ModelName = Annotated[str, Field(min_length=1, max_length=128, description="default: the app's default model")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaskFormat(StrEnum):
    rle = "rle"
    png = "png"


class RLE(_Body):
    """COCO RLE as pycocotools writes it: size [height, width], compressed counts."""

    size: Annotated[list[Annotated[int, Field(ge=1, le=100_000)]], Field(min_length=2, max_length=2)]
    counts: str = Field(min_length=1, max_length=20_000_000)


def _check_prompt(points: list, labels: list, box: list | None) -> None:
    if len(points) != len(labels):
        raise ValueError(f"{len(points)} points but {len(labels)} labels: one label (1 positive, 0 negative) per point")
    if box is not None and (box[2] < box[0] or box[3] < box[1]):
        raise ValueError(f"box must be x0, y0, x1, y1 with x1 >= x0 and y1 >= y0, got {box}")


# ------------------------------------------------------------------------------------------------------ images
class EmbedRequest(_Body):
    """An image as base64 file bytes (PNG, JPEG, ...) or as a path/file:// URI the server can read."""

    image: str | None = Field(None, description="base64 of the image file")
    uri: str | None = Field(None, min_length=1, max_length=4096)
    model: ModelName | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.image is None) == (self.uri is None):
            raise ValueError("give exactly one of `image` (base64 file bytes) or `uri`")
        return self


class ImageInfo(BaseModel):
    image_id: str = Field(description="sha256 of the file bytes; predict against it")
    model: str
    width: int
    height: int
    cached: bool = Field(description="the embedding was already in this replica's cache")
    seconds: float = Field(description="time spent in the replica")


class MaskInput(_Body):
    """A mask prompt: one mask of an earlier prediction on the same image (its low-res logits, as SAM's
    refinement loop uses them), or a binary mask of the image size."""

    prediction_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    index: int | None = Field(None, ge=0, le=2, description="which mask of that prediction (default: best)")
    rle: RLE | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.prediction_id is None) == (self.rle is None):
            raise ValueError("give exactly one of `prediction_id` or `rle`")
        if self.index is not None and self.prediction_id is None:
            raise ValueError("`index` picks a mask of `prediction_id`")
        return self


class PredictRequest(_Body):
    image_id: str = Field(pattern=IMAGE_ID)
    model: ModelName | None = None
    points: list[Point] = Field(default_factory=list, max_length=MAX_POINTS)
    labels: list[Literal[0, 1]] = Field(default_factory=list, max_length=MAX_POINTS)
    box: Box | None = None
    mask_input: MaskInput | None = None
    multimask_output: bool = True
    best_only: bool = Field(False, description="return only the highest-scoring mask (all candidates are still "
                                               "kept for refinement): what an annotation tool shows, and cheaper")
    mask_format: MaskFormat = MaskFormat.rle

    @model_validator(mode="after")
    def _prompt(self):
        _check_prompt(self.points, self.labels, self.box)
        if not self.points and self.box is None and self.mask_input is None:
            raise ValueError("a prediction needs points, a box or a mask_input")
        return self

    @property
    def uploads_mask(self) -> bool:
        """It carries a mask as RLE, which may be megabytes (the replica call goes by the object store, not gRPC:
        `routing.routed`)."""
        return self.mask_input is not None and self.mask_input.rle is not None


class MaskOut(BaseModel):
    score: float = Field(description="predicted IoU (image) or object-presence probability (video)")
    area: int
    bbox: list[float] = Field(description="x, y, w, h pixels")
    rle: RLE | None = None
    png: str | None = Field(None, description="base64 PNG, 0/255")


class Prediction(BaseModel):
    image_id: str
    model: str
    prediction_id: str = Field(description="refine with mask_input={'prediction_id': ...}")
    width: int
    height: int
    masks: list[MaskOut]
    best: int = Field(description="index of the mask with the highest score")


# ------------------------------------------------------------------------------------------------------ video
class OpenSession(_Body):
    uri: str = Field(min_length=1, max_length=4096, description="a video file or frame folder the server can read")
    model: ModelName | None = None


class SessionInfo(BaseModel):
    session_id: str
    model: str
    num_frames: int | None
    width: int
    height: int
    objects: list[int]
    idle_timeout_s: float


class VideoPrompt(_Body):
    """Clicks and/or a box, or a mask, for one object on one frame. A prompt on a frame the object was already
    tracked on is a correction: the next propagation applies it on top of the memory there."""

    frame_idx: int = Field(ge=0, le=10_000_000)
    obj_id: int = Field(ge=0, le=2**31 - 1)
    points: list[Point] = Field(default_factory=list, max_length=MAX_POINTS)
    labels: list[Literal[0, 1]] = Field(default_factory=list, max_length=MAX_POINTS)
    box: Box | None = None
    mask: RLE | None = None
    clear_old_points: bool = True

    @model_validator(mode="after")
    def _prompt(self):
        _check_prompt(self.points, self.labels, self.box)
        if self.mask is not None and (self.points or self.box is not None):
            raise ValueError("a prompt is either a mask, or points and/or a box")
        if not self.points and self.box is None and self.mask is None:
            raise ValueError("a prompt needs points, a box or a mask")
        return self


class Propagate(_Body):
    backward: bool = Field(True, description="after the forward pass, track back from the first prompt to frame 0")
    max_frames: int | None = Field(None, ge=1, description="stop after this many frames (1 = the first prompt frame)")
    mask_format: MaskFormat = MaskFormat.rle


class ObjectMask(MaskOut):
    obj_id: int
    iou: float = Field(description="the model's predicted IoU of the mask")
    prompted: bool = Field(description="the object was prompted on this frame")


class FrameMasks(BaseModel):
    """One line of the propagation stream (NDJSON)."""

    frame_idx: int
    objects: list[ObjectMask]
