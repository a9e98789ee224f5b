"""Media metadata read with PyAV and Pillow. FiftyOne's `compute_metadata` runs the `ffprobe`
executable, which a pip-only install lacks; the frame size converts prompts to pixels, and the
App needs size, rate and frame count to play a video."""

from __future__ import annotations

import mimetypes
import os

import av
import fiftyone as fo
from PIL import Image

from sam2.frames import open_frames

from .fields import media_type


def video_metadata(path: str) -> fo.VideoMetadata:
    """Frame count as the runtime decodes it (so frame numbers agree with the masklets)."""
    frames = open_frames(path)
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        codec = stream.codec_context.name
    return fo.VideoMetadata(size_bytes=os.path.getsize(path), mime_type=mimetypes.guess_type(path)[0],
                            frame_width=frames.width, frame_height=frames.height, frame_rate=rate,
                            total_frame_count=frames.num_frames,
                            duration=frames.num_frames / rate if rate else None, encoding_str=codec)


def image_metadata(path: str) -> fo.ImageMetadata:
    with Image.open(path) as image:
        width, height, channels = image.width, image.height, len(image.getbands())
    return fo.ImageMetadata(size_bytes=os.path.getsize(path), mime_type=mimetypes.guess_type(path)[0],
                            width=width, height=height, num_channels=channels)


def ensure_metadata(view) -> int:
    """Fill in the metadata of the samples that have none; media that cannot be read keep none
    (their jobs then fail with the reason). Returns how many were filled in."""
    read = video_metadata if media_type(view) == "video" else image_metadata
    missing = view.exists("metadata", False)
    found = {}
    for sample_id, path in zip(*missing.values(["id", "filepath"]), strict=True):
        try:
            found[sample_id] = read(path)
        except (OSError, ValueError, av.FFmpegError, IndexError):
            continue
    if found:
        missing.set_values("metadata", found, key_field="id")
    return len(found)
