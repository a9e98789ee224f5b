"""Pre-annotating a Label Studio video project end to end: tasks per minute, and the share of time
spent in Label Studio I/O (listing tasks, downloading media, writing predictions) versus tracking.

    .venv/bin/python benchmarks/label_studio.py [--videos 50] [--frames 16] [--replicas 1]

Starts a real Label Studio server from .venv-labelstudio (as the tests do), imports N generated
videos (sam2.data.synthetic) as local-files tasks with one VideoRectangle keyframe per object on
frame 1 (the objects' true boxes), then runs `pipelines.preannotate` with the bundled mini model
(random weights: the work per frame is real, the tracks are not) on a local Ray. The end-to-end
time includes Ray start-up (reported apart) and model loading (inside tracking); the stages are
timed inside the pipeline. Label Studio I/O = reading tasks and media + writing predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label_studio_sdk import LabelStudio  # noqa: E402

from pipelines.preannotate import preannotate  # noqa: E402
from sam2.data.mp4 import write_mp4  # noqa: E402
from sam2.data.synthetic import ClipSpec, generate_clip  # noqa: E402
from tests.support.label_studio import TOKEN, start_server  # noqa: E402

CONFIG = """<View>
  <Labels name="labels" toName="video"><Label value="object"/></Labels>
  <Video name="video" value="$video" framerate="10.0"/>
  <VideoRectangle name="track" toName="video"/>
</View>"""


def first_frame_tracks(masks: np.ndarray, width: int, height: int, frames: int) -> list[dict]:
    """One VideoRectangle per object: its true box on frame 1, as an annotator would draw it."""
    out = []
    for i, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if not len(xs):
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        key = {"frame": 1, "enabled": True, "rotation": 0, "time": 0.1, "x": x0 / width * 100,
               "y": y0 / height * 100, "width": (x1 - x0) / width * 100, "height": (y1 - y0) / height * 100}
        out.append({"id": f"o{i}", "from_name": "track", "to_name": "video", "type": "videorectangle",
                    "value": {"framesCount": frames, "duration": frames / 10, "labels": ["object"],
                              "sequence": [key]}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=50)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--model", default="sam2.1_hiera_mini")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = start_server(tmp / "ls")
        try:
            spec = ClipSpec(num_frames=args.frames, max_objects=3)
            sdk = LabelStudio(base_url=server.url, api_key=TOKEN)
            project = sdk.projects.create(title="benchmark", label_config=CONFIG)
            folder = server.media_root / "bench"
            tasks, objects = [], 0
            for i in range(args.videos):
                clip = generate_clip(1000 + i, spec)
                write_mp4(clip.frames, folder / f"v{i:03d}.mp4", fps=10)
                tracks = first_frame_tracks(clip.masks[0], spec.width, spec.height, args.frames)
                objects += len(tracks)
                tasks.append({"data": {"video": f"/data/local-files/?d=bench/v{i:03d}.mp4"},
                              "annotations": [{"result": tracks}]})
            sdk.import_storage.local.create(project=project.id, path=str(folder), regex_filter="^$")
            sdk.projects.import_tasks(id=project.id, request=tasks)
            (tmp / "pipeline.yaml").write_text(yaml.safe_dump({
                "model": {"config": args.model}, "pool": {"num_replicas": args.replicas, "num_cpus": 1}}))

            start = time.perf_counter()
            result = preannotate(server.url, TOKEN, project.id, config=tmp / "pipeline.yaml", store=tmp / "store",
                                 cache=tmp / "cache", progress=False)
            total = time.perf_counter() - start
        finally:
            server.stop()

    io_s = result.seconds["read"] + result.seconds["write"]
    track_s = result.seconds["track"]
    ray_s = result.seconds.get("ray_start", 0.0)
    numbers = {
        "videos": args.videos, "frames_per_video": args.frames, "objects": objects, "model": args.model,
        "replicas": args.replicas, "cpus": os.cpu_count(), "written": len(result.written),
        "skipped": len(result.skipped), "end_to_end_s": round(total, 2),
        "tasks_per_minute": round(len(result.written) / total * 60, 1),
        "label_studio_read_s": round(result.seconds["read"], 2),
        "label_studio_write_s": round(result.seconds["write"], 2),
        "tracking_s": round(track_s, 2), "ray_start_s": round(ray_s, 2),
        "other_s": round(total - io_s - track_s - ray_s, 2),
        "label_studio_io_share": round(io_s / total, 3), "tracking_share": round(track_s / total, 3),
        "tracked_frames_per_s": round(result.tracking.frames / track_s, 1) if result.tracking else None,
    }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
