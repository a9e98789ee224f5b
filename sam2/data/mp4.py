"""Frames to an H.264 mp4 with PyAV (the reader is `sam2.frames`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_mp4(frames: np.ndarray, path: str | Path, fps: int = 24) -> Path:
    """frames: T x H x W x 3 uint8 RGB (even H and W, as yuv420p needs)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path
