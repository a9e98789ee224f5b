"""Generated videos as FiftyOne samples: an mp4 from `sam2.data.synthetic`, its metadata read with
PyAV, box prompts on chosen keyframes only (so only those frames are stored), and on request the
exact ground truth as frame-level Detections with instance masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from integrations.fiftyone import formats
from integrations.fiftyone.media import video_metadata
from sam2.data.mp4 import write_mp4
from sam2.data.synthetic import Clip, ClipSpec, generate_clip


def small_clip(seed: int, num_frames: int = 48, objects: int = 2, height: int = 64, width: int = 96) -> Clip:
    spec = ClipSpec(num_frames=num_frames, height=height, width=width, min_objects=objects, max_objects=objects,
                    p_exit=0.0, p_occluder=0.0)
    return generate_clip(seed, spec)


def box_prompts(fo, clip: Clip, frame_idx: int, label: str = "thing"):
    """The tight box of every object visible on a frame, relative xywh, `index` = object id."""
    height, width = clip.frames.shape[1:3]
    dets = []
    for k, obj_id in enumerate(clip.obj_ids):
        ys, xs = np.nonzero(clip.masks[frame_idx, k])
        if len(xs):
            box = formats.box_from_pixels((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), width, height)
            dets.append(fo.Detection(label=label, bounding_box=box, index=obj_id))
    return fo.Detections(detections=dets)


def ground_truth(fo, clip: Clip, label: str = "thing") -> dict:
    """frame number -> Detections of the exact masks (cropped to their boxes), `index` = object id."""
    out = {}
    for t in range(clip.num_frames):
        dets = []
        for k, obj_id in enumerate(clip.obj_ids):
            instance = formats.mask_to_instance(clip.masks[t, k])
            if instance is not None:
                dets.append(fo.Detection(label=label, bounding_box=instance[0], mask=instance[1], index=obj_id))
        out[t + 1] = fo.Detections(detections=dets)
    return out


def video_sample(fo, clip: Clip, path: Path, keyframes=(0,), prompt_field: str = "prompts"):
    """A sample of the clip written to `path`, with prompts stored on `keyframes` (0-based) only."""
    write_mp4(clip.frames, path)
    sample = fo.Sample(filepath=str(path), metadata=video_metadata(str(path)))
    for frame_idx in keyframes:
        sample.frames[formats.frame_number(frame_idx)][prompt_field] = box_prompts(fo, clip, frame_idx)
    return sample
