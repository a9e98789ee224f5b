"""Manifests of videos and prompts -> `VideoJob`s.

Three layouts, one meaning (pixel coordinates of the original frame, 0-based frames):
- JSONL: one video per line, `{"video_id", "uri", "prompts": [{"obj_id", "frame", "points",
  "labels", "box", "label"}]}`; or, without prompts, `"mode": "everything"` (find every object) or
  `"mode": "detections"` with `"detections": [{"frame", "box", "label", "score"}]` (none: the
  detector the pipeline YAML names);
- CSV or Parquet: one prompt per row, columns `video_id, uri, obj_id, frame` and any of
  `points` ("x,y;x,y"), `labels` ("1;0"), `box` ("x0,y0,x1,y1"), `label`; with a `mode` column,
  a row of mode "everything" names its video only, and a row of mode "detections" is one detection
  (`frame`, `box`, `label`, `score`; no box: the video's detections come from the detector).
Relative media paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.errors import InvalidInput
from sam2_ray.labeler import VideoOutcome
from sam2_ray.records import Detection, InvalidPrompt, Prompt, VideoJob
from sam2_ray.sources import PlannedJobs


def _numbers(text: str, where: str) -> list[float]:
    try:
        return [float(v) for v in str(text).split(",")]
    except ValueError:
        raise InvalidInput(f"{where}: expected comma-separated numbers, got {text!r}") from None


def _prompt_from_row(row: dict, where: str) -> Prompt:
    points = row.get("points")
    if isinstance(points, str):
        points = [_numbers(p, where) for p in points.split(";") if p.strip()]
    labels = row.get("labels")
    if isinstance(labels, str):
        labels = [int(v) for v in labels.split(";") if v.strip()]
    box = row.get("box")
    if isinstance(box, str):
        box = _numbers(box, where) if box.strip() else None
    try:
        obj_id, frame = int(row["obj_id"]), int(row.get("frame", row.get("frame_idx", 0)))
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(f"{where}: needs integer obj_id and frame") from None
    return Prompt(obj_id, frame, tuple(points or ()), tuple(labels or ()), tuple(box) if box else None,
                  label=row.get("label") or None)


def _detection_from_row(row: dict, where: str) -> Detection | None:
    """A detection row, or None for a row that only says the video is to be labelled from detections."""
    box = row.get("box")
    if isinstance(box, str):
        box = _numbers(box, where) if box.strip() else None
    if box is None:
        return None
    try:
        frame = int(row.get("frame", row.get("frame_idx", 0)))
        score = float(row["score"]) if row.get("score") not in (None, "") else 1.0
    except (TypeError, ValueError):
        raise InvalidInput(f"{where}: a detection needs an integer frame and a numeric score") from None
    return Detection(frame, tuple(box), row.get("label") or None, score)


def _resolve(uri: str, base: Path) -> str:
    if "://" in uri or Path(uri).is_absolute():
        return uri
    return str(base / uri)


def _job(video_id: str, uri: str, prompts: tuple, rejected: list[VideoOutcome], **kw) -> VideoJob | None:
    try:
        return VideoJob(video_id, uri, prompts, **kw)
    except InvalidPrompt as error:  # one bad video never stops the job: it is reported as failed
        rejected.append(VideoOutcome(video_id, "failed", reason=str(error)))
        return None


def read_manifest(path: str | Path) -> tuple[list[VideoJob], list[VideoOutcome]]:
    """(jobs in manifest order, failed outcomes for videos whose prompts are invalid). A manifest
    that cannot be parsed is an InvalidInput naming the line or row."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"manifest not found: {path}")
    base = path.parent
    rejected: list[VideoOutcome] = []
    if path.suffix == ".jsonl":
        jobs = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name} line {n}"
            try:
                entry = json.loads(line)
                prompts = tuple(_prompt_from_row(p, where) for p in entry.get("prompts", []))
                detections = tuple(d for d in (_detection_from_row(r, where) for r in entry.get("detections", []))
                                   if d is not None)
                jobs.append(_job(str(entry["video_id"]), _resolve(entry["uri"], base), prompts, rejected,
                                 source_ref=entry.get("source_ref", {}), mode=entry.get("mode", "prompts"),
                                 detections=detections))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
                raise InvalidInput(f"{where}: not a video entry ({error})") from None
        return [j for j in jobs if j is not None], rejected
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    elif path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        raise InvalidInput(f"manifest {path} must be .jsonl, .csv or .parquet")
    grouped: dict[str, list] = defaultdict(list)
    found: dict[str, list] = defaultdict(list)
    uris: dict[str, str] = {}
    modes: dict[str, str] = {}
    for n, row in enumerate(rows, 2):
        where = f"{path.name} row {n}"
        if not row.get("video_id") or not row.get("uri"):
            raise InvalidInput(f"{where}: needs video_id and uri")
        video_id = str(row["video_id"])
        uris.setdefault(video_id, _resolve(str(row["uri"]), base))
        mode = row.get("mode") or "prompts"
        if modes.setdefault(video_id, mode) != mode:
            raise InvalidInput(f"{where}: video {video_id!r} has rows of modes {modes[video_id]!r} and {mode!r}")
        if mode == "prompts":
            grouped[video_id].append(_prompt_from_row(row, where))
        elif mode == "detections" and (detection := _detection_from_row(row, where)) is not None:
            found[video_id].append(detection)
    jobs = [_job(video_id, uri, tuple(grouped[video_id]), rejected, mode=modes[video_id],
                 detections=tuple(found[video_id])) for video_id, uri in uris.items()]
    return [j for j in jobs if j is not None], rejected


class ManifestSource:
    """A manifest file as a `JobSource` (read when the run starts)."""

    def __init__(self, path: str | Path) -> None:
        self.path = path

    def read(self) -> PlannedJobs:
        return PlannedJobs(*read_manifest(self.path))
