"""Which dataset and fields a call works on, checked before any work starts: prompts and labels
live on frames for videos and on samples for images, so a field name is resolved against the
collection's media type."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.core.clips as foc
import fiftyone.core.patches as fop
import fiftyone.core.video as fov

PROMPT_TYPES = {fo.Detections: "detections", fo.Keypoints: "keypoints"}


class InvalidField(ValueError):
    """A collection or field that cannot be used; the message names it and says what would do."""


def dataset_name(view) -> str:
    """The name of the dataset a collection belongs to (a view's `dataset_name`, a dataset's `name`)."""
    return view.name if isinstance(view, fo.Dataset) else view.dataset_name


def media_type(view) -> str:
    """"video" or "image"; other collections are refused."""
    if isinstance(view, foc.ClipsView | fov.FramesView | fop.PatchesView):
        raise InvalidField(f"{type(view).__name__} of {dataset_name(view)!r}: use a view of the dataset's own "
                           "samples (clip, frame and patch views are generated copies)")
    kind = view.media_type
    if kind not in ("video", "image"):
        raise InvalidField(f"dataset {dataset_name(view)!r} holds {kind} samples; only video and image datasets "
                           "are supported")
    return kind


def root_dataset(view) -> fo.Dataset:
    """The dataset a view selects from (labels are written there, so frames a view hides still
    get their labels)."""
    media_type(view)
    return view if isinstance(view, fo.Dataset) else fo.load_dataset(view.dataset_name)


def field_path(view, name: str) -> str:
    """`name` as a path: "frames.<name>" on video collections; a "frames." prefix is accepted."""
    bare = name.removeprefix("frames.")
    if not bare or "." in bare:
        raise InvalidField(f"{name!r} is not a field name (a top-level field, e.g. 'sam2' or 'frames.sam2')")
    if media_type(view) == "video":
        return f"frames.{bare}"
    if name.startswith("frames."):
        raise InvalidField(f"dataset {dataset_name(view)!r} holds images: {name!r} must be a sample field")
    return bare


def prompt_field(view, name: str) -> tuple[str, str]:
    """(path, "detections" or "keypoints") of a prompt field, which must exist."""
    path = field_path(view, name)
    field = view.get_field(path)
    if field is None:
        raise InvalidField(f"dataset {dataset_name(view)!r} has no field {path!r}")
    kind = PROMPT_TYPES.get(getattr(field, "document_type", None))
    if kind is None:
        raise InvalidField(f"{path!r} of dataset {dataset_name(view)!r} holds {field}; prompts must be "
                           "Detections (boxes) or Keypoints (points)")
    return path, kind


def label_field(view, name: str, document_type=fo.Detections) -> str:
    """Path of a field to write; an existing field must hold `document_type` (never overwrite
    another kind of data)."""
    path = field_path(view, name)
    field = view.get_field(path)
    if field is not None and getattr(field, "document_type", None) is not document_type:
        raise InvalidField(f"{path!r} of dataset {dataset_name(view)!r} already holds {field}; choose another "
                           f"field for {document_type.__name__}")
    return path


def detections_field(view, name: str) -> str:
    """Path of a field of detections to seed tracks from (Detections only: keypoints have no box)."""
    path = field_path(view, name)
    field = view.get_field(path)
    if field is None:
        raise InvalidField(f"dataset {dataset_name(view)!r} has no field {path!r}")
    if getattr(field, "document_type", None) is not fo.Detections:
        raise InvalidField(f"{path!r} of dataset {dataset_name(view)!r} holds {field}; detections to track must be "
                           "Detections (boxes)")
    return path


def check_fields(view, prompt: str | None, label: str, segmentation: str | None = None,
                 detections: str | None = None) -> None:
    """The fields of a propagation, before any work: prompts or detections to read (neither: the model finds
    the objects), labels (and a segmentation) to write, all different."""
    media_type(view)
    if prompt and detections:
        raise InvalidField(f"give a prompt field or a detections field, not both ({prompt!r}, {detections!r})")
    if prompt:
        prompt_field(view, prompt)
    if detections:
        detections_field(view, detections)
    label_field(view, label)
    if segmentation:
        label_field(view, segmentation, fo.Segmentation)
    names = [n for n in (prompt or detections, label, segmentation) if n]
    if len({field_path(view, n) for n in names}) != len(names):
        read = "detections, " if detections else "prompt, " if prompt else ""
        raise InvalidField(f"the {read}label and segmentation fields must differ, got "
                           f"{', '.join(repr(n) for n in names)}")
