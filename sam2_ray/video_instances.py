"""The masklet store as video instance-segmentation datasets: YouTube-VIS JSON and COCO video JSON.

Both formats are written from the same reading of the store, in two passes over the selected videos:

1. a summary of each video from its small columns only (no masks): frame size, length, its tracks and
   their categories; these few numbers per video are all the headers (`videos`, `images`, `categories`)
   need;
2. the annotations, one video's rows at a time, streamed into the file.

So memory holds the summaries and one video's rows, whatever the number of videos. The file is written
to a temporary name beside `out` and renamed when complete: a failed export leaves no partial file.

Conventions shared by both formats:

- Videos get ids 1..V in the order they are given (by default the store's video ids, sorted); `name` is
  the store's video id and `uri` the media the video was labelled from, where the store's manifest has it.
- A video's `length` is the decoded video's frame count, which the labeller records in the store's
  manifest (`num_frames`); for a store written without it, the last frame index + 1 (prompted objects are
  tracked over the whole video, so that is the same count).
- Frames are not written: `file_names` / `file_name` are the names the frames would have if extracted as
  `<video_id>/<frame_idx:05d>.jpg` (0-based frame index, as in the store).
- Categories: one per distinct class name (`label`), ids 1..N in sorted name order; an object without
  a label is in the category "object". An object has one category over the whole video (the label of
  its rows; if its rows disagree, the most frequent one).
- A track is one object of one video. Tracks get numbers 1..T over the whole export (in video order, then
  by `obj_id`): the YouTube-VIS annotation `id` and the COCO video `instance_id`, so both are unique across
  the file. Every annotation also carries `obj_id`, the store's track id (unique within its video).
- A mask that is empty (the object absent on that frame, area 0) is no annotation in COCO video and
  `null` in YouTube-VIS; a track whose mask is empty on every frame is left out of both.
- Masks are COCO compressed RLE `{"size": [height, width], "counts": str}`, the store's own bytes as
  text; boxes are `[x, y, w, h]` pixels and areas pixel counts, as `pycocotools.mask.toBbox` / `area`
  give them; `score` is the object-presence probability (YouTube-VIS: its mean over the frames where
  the object is present).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .masklet_store import MaskletStore
from .records import MaskletRow

FORMATS = ("youtube-vis", "coco-video")
UNLABELLED = "object"  # the category of objects without a class name
_SUMMARY_COLUMNS = ["obj_id", "frame_idx", "height", "width", "area", "label"]


@dataclass(frozen=True)
class VideoSummary:
    """One video as the headers need it: read from the store's small columns, never its masks."""

    video_id: str
    id: int  # 1-based, in the export
    width: int
    height: int
    length: int  # frames: last frame index + 1
    tracks: dict[int, int]  # obj_id -> track number (1-based over the export), objects present somewhere
    categories: dict[int, str]  # obj_id -> category name, for the same objects
    first_image: int  # COCO video image id of frame 0; frame f is first_image + f
    uri: str | None = None

    def file_name(self, frame_idx: int) -> str:
        return f"{self.video_id}/{frame_idx:05d}.jpg"


@dataclass
class ExportSummary:
    """What an export wrote."""

    path: Path
    format: str
    videos: int = 0
    tracks: int = 0
    annotations: int = 0  # YouTube-VIS: one per track; COCO video: one per present object per frame
    categories: list[str] = field(default_factory=list)
    empty_videos: list[str] = field(default_factory=list)  # in the store without any row: not exported

    def report(self) -> str:
        lines = [f"{self.format}: {self.path}",
                 f"  {self.videos} videos, {self.tracks} tracks, {self.annotations} annotations, "
                 f"{len(self.categories)} categories ({', '.join(self.categories) or 'none'})"]
        if self.empty_videos:
            lines.append(f"  left out, no rows in the store: {', '.join(self.empty_videos)}")
        return "\n".join(lines)


def export(store: MaskletStore, out: str | Path, fmt: str, video_ids: Sequence[str] | None = None) -> ExportSummary:
    """Write the store's videos (`video_ids`, default all, sorted) as `fmt` (one of FORMATS) to `out`.
    Raises KeyError for a video that is not in the store, ValueError for an unknown format or a video whose
    rows disagree on the frame size, OSError when `out` cannot be written."""
    writers = {"youtube-vis": write_youtube_vis, "coco-video": write_coco_video}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    return writers[fmt](store, out, video_ids)


def write_youtube_vis(store: MaskletStore, out: str | Path, video_ids: Sequence[str] | None = None) -> ExportSummary:
    """YouTube-VIS (2019/2021) instances JSON: `videos` with per-frame `file_names`, one annotation per
    track with per-frame `segmentations`, `bboxes` and `areas` (null where the object is absent)."""
    summaries, result = _summarise(store, out, "youtube-vis", video_ids)
    categories = _category_ids(result)

    def videos() -> Iterator[dict]:
        for s in summaries:
            yield {"id": s.id, "name": s.video_id, "width": s.width, "height": s.height, "length": s.length,
                   "file_names": [s.file_name(f) for f in range(s.length)], **_uri(s)}

    def annotations() -> Iterator[dict]:
        for s in summaries:
            by_object: dict[int, list[MaskletRow]] = defaultdict(list)
            for row in store.rows(s.video_id):
                if row.obj_id in s.tracks:
                    by_object[row.obj_id].append(row)
            for obj_id in sorted(by_object):
                result.annotations += 1
                yield _track(s, obj_id, categories[s.categories[obj_id]], by_object.pop(obj_id))

    _write_json(Path(out), [("info", _info("YouTube-VIS")), ("licenses", []), ("categories", _categories(categories)),
                            ("videos", videos()), ("annotations", annotations())])
    return result


def write_coco_video(store: MaskletStore, out: str | Path, video_ids: Sequence[str] | None = None) -> ExportSummary:
    """COCO video JSON (the CocoVID layout of TAO, mmtracking and BDD100K MOTS): `videos`, one `images`
    entry per frame (`video_id`, 0-based `frame_id`), one annotation per object per frame where its mask
    is not empty, with `instance_id`. Loads with `pycocotools.coco.COCO`, which reads images, annotations
    and categories and ignores the rest."""
    summaries, result = _summarise(store, out, "coco-video", video_ids)
    categories = _category_ids(result)

    def videos() -> Iterator[dict]:
        for s in summaries:
            yield {"id": s.id, "name": s.video_id, "width": s.width, "height": s.height, "length": s.length,
                   **_uri(s)}

    def images() -> Iterator[dict]:
        for s in summaries:
            for f in range(s.length):
                yield {"id": s.first_image + f, "video_id": s.id, "frame_id": f, "file_name": s.file_name(f),
                       "width": s.width, "height": s.height}

    def annotations() -> Iterator[dict]:
        for s in summaries:
            for row in sorted(store.rows(s.video_id), key=lambda r: (r.frame_idx, r.obj_id)):
                if row.area == 0 or row.obj_id not in s.tracks:
                    continue
                result.annotations += 1
                yield {"id": result.annotations, "image_id": s.first_image + row.frame_idx, "video_id": s.id,
                       "instance_id": s.tracks[row.obj_id], "obj_id": row.obj_id,
                       "category_id": categories[s.categories[row.obj_id]], "segmentation": _rle(row),
                       "bbox": list(row.bbox), "area": row.area, "iscrowd": 0, "score": _number(row.score)}

    _write_json(Path(out), [("info", _info("COCO video")), ("licenses", []), ("categories", _categories(categories)),
                            ("videos", videos()), ("images", images()), ("annotations", annotations())])
    return result


# ------------------------------------------------------------------------------------------ first pass
def _summarise(store: MaskletStore, out: str | Path, fmt: str,
               video_ids: Sequence[str] | None) -> tuple[list[VideoSummary], ExportSummary]:
    done = store.done()
    if video_ids is None:
        video_ids = sorted(done)
    missing = [v for v in video_ids if v not in done]
    if missing:
        raise KeyError(f"not in the masklet store {store.root}: {', '.join(map(repr, missing))}")
    manifest = store.manifest()
    result = ExportSummary(Path(out), fmt)
    summaries: list[VideoSummary] = []
    names: set[str] = set()
    next_track = next_image = 1
    for video_id in dict.fromkeys(video_ids):  # each once, in the order given
        columns = store.read_video(video_id, _SUMMARY_COLUMNS).to_pydict()
        if not columns["obj_id"]:
            result.empty_videos.append(video_id)
            continue
        sizes = set(zip(columns["height"], columns["width"], strict=True))
        if len(sizes) != 1:
            raise ValueError(f"video {video_id!r}: rows of different frame sizes {sorted(sizes)} (height, width)")
        (height, width), = sizes
        present = {o for o, a in zip(columns["obj_id"], columns["area"], strict=True) if a > 0}
        categories = {o: c for o, c in _object_categories(columns["obj_id"], columns["label"]).items() if o in present}
        tracks = {o: next_track + i for i, o in enumerate(sorted(present))}
        entry = manifest.get(video_id, {})
        length = max(max(columns["frame_idx"]) + 1, entry.get("num_frames") or 0)
        summaries.append(VideoSummary(video_id, len(summaries) + 1, width, height, length, tracks, categories,
                                      next_image, entry.get("uri")))
        next_track += len(tracks)
        next_image += length
        names.update(categories.values())
    result.videos, result.tracks, result.categories = len(summaries), next_track - 1, sorted(names)
    return summaries, result


def _object_categories(obj_ids: Iterable[int], labels: Iterable[str | None]) -> dict[int, str]:
    """obj_id -> its category: the most frequent label of its rows (a tie: the first name), else UNLABELLED."""
    counts: dict[int, Counter] = {}
    for obj_id, label in zip(obj_ids, labels, strict=True):
        named = counts.setdefault(obj_id, Counter())
        if label is not None:
            named[label] += 1
    return {obj_id: min(named, key=lambda name: (-named[name], name)) if named else UNLABELLED
            for obj_id, named in counts.items()}


def _category_ids(result: ExportSummary) -> dict[str, int]:
    return {name: i + 1 for i, name in enumerate(result.categories)}


# ------------------------------------------------------------------------------------------ records
def _categories(ids: dict[str, int]) -> list[dict]:
    return [{"id": i, "name": name, "supercategory": UNLABELLED} for name, i in ids.items()]


def _info(fmt: str) -> dict:
    return {"description": f"sam2-ray masklet store as {fmt}", "version": "1.0"}


def _uri(summary: VideoSummary) -> dict:
    return {"uri": summary.uri} if summary.uri else {}


def _rle(row: MaskletRow) -> dict:
    return {"size": [row.height, row.width], "counts": row.rle.decode("ascii")}


def _number(value: float) -> float | None:
    """JSON has no NaN: an unknown score is null."""
    return float(value) if math.isfinite(value) else None


def _track(s: VideoSummary, obj_id: int, category_id: int, rows: list[MaskletRow]) -> dict:
    """One YouTube-VIS annotation: the object's per-frame lists over the whole video."""
    segmentations: list[dict | None] = [None] * s.length
    bboxes: list[list[float] | None] = [None] * s.length
    areas: list[int | None] = [None] * s.length
    scores = []
    for row in rows:
        if row.area > 0:
            segmentations[row.frame_idx], bboxes[row.frame_idx] = _rle(row), list(row.bbox)
            areas[row.frame_idx] = row.area
            scores.append(row.score)
    return {"id": s.tracks[obj_id], "video_id": s.id, "obj_id": obj_id, "category_id": category_id,
            "segmentations": segmentations, "bboxes": bboxes, "areas": areas, "iscrowd": 0,
            "width": s.width, "height": s.height, "length": s.length, "score": _number(sum(scores) / len(scores))}


# ------------------------------------------------------------------------------------------ writing
def _write_json(out: Path, sections: list[tuple[str, object]]) -> None:
    """Write the object {key: value, ...}; a value that is an iterator becomes a list written one element at
    a time, so memory never holds it whole. Atomic: a temporary file beside `out`, renamed when complete."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w") as f:
            for i, (key, value) in enumerate(sections):
                f.write(("{" if i == 0 else ",") + f"\n{json.dumps(key)}: ")
                if isinstance(value, Iterator):
                    f.write("[")
                    for j, item in enumerate(value):
                        f.write(("\n" if j == 0 else ",\n") + json.dumps(item, separators=(",", ":"), allow_nan=False))
                    f.write("\n]")
                else:
                    f.write(json.dumps(value, allow_nan=False))
            f.write("\n}\n")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
