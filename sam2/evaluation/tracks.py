"""How well prompt-free tracks cover the ground-truth objects of a video: every (object, track) pair
scored by J&F, a one-to-one matching, then recall, duplicate and spurious tracks. For labelling
with no prompts, where track ids are whatever the labeller chose and need not agree with the
ground truth's.

- Frames: the ground truth's annotated frames (all of them by default: no frame is a prompt);
  predictions on other frames are ignored. An object or track missing from a frame is empty there.
- Pair J&F: J and F per frame as in `metrics` (and `jf`), averaged over the frames where the object
  or the track is present. Unlike SA-V's per-object rule (every frame from the first appearance on),
  frames where both are empty are not counted: with unknown ids, they would let a track that lives
  at another time than an object score high against it. Where the object and the track are both on
  every frame the two rules agree. A pair whose masks are never within the boundary tolerance of
  each other has J = F = 0 on every counted frame and costs nothing to score.
- Matching: objects visible on at least `min_frames` evaluated frames are counted; they are matched
  to tracks one-to-one (scipy's linear_sum_assignment), maximising the summed J&F of the pairs at or
  above `threshold` (a pair below it cannot make an object found, so it weighs nothing). An object
  is found when its track's J&F >= threshold. The uncounted objects are then matched to the tracks
  left, so that a track on a brief object is not called spurious; they count in no rate.
- A track not in the matching is a duplicate when its J&F with a found object is >= threshold (a
  second track on one object), spurious otherwise. A piece of a split object scores about the share
  of the object's frames it covers: the better piece finds the object only if it alone reaches the
  threshold, and another piece is spurious unless it reaches it too (two exact halves score 0.5
  each: at the default threshold one finds the object and the other is a duplicate).
- Values in [0, 1]; a rate with nothing to count is NaN.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .jf import _present, _sorted
from .masks import InvalidMasks, VideoMasks
from .metrics import boundary_f_measure, boundary_radius, region_similarity


@dataclass(frozen=True)
class PairScores:
    """J and F of every (ground-truth object, track) pair of one video, G x T, over the frames where
    either is present (see the module docstring); `frames` counts those frames."""

    gt_ids: tuple[int, ...]
    track_ids: tuple[int, ...]
    j: np.ndarray  # G x T
    f: np.ndarray  # G x T
    frames: np.ndarray  # G x T int, frames where the object or the track is present
    gt_frames: np.ndarray  # G int, evaluated frames where each object is visible

    @property
    def jf(self) -> np.ndarray:
        return (self.j + self.f) / 2


def pair_scores(gt: VideoMasks, pred: VideoMasks, video_id: str = "", skip_first_last: bool = False) -> PairScores:
    """Score every (object, track) pair of one video. Per frame, only pairs whose boxes come within
    the boundary tolerance are measured (on the crop around both masks, which gives the whole-image
    values); any other pair present on the frame has J = F = 0 there."""
    frames = sorted(gt)
    if skip_first_last:
        frames = frames[1:-1]
    j_sum: dict[tuple[int, int], float] = defaultdict(float)
    f_sum: dict[tuple[int, int], float] = defaultdict(float)
    both: dict[tuple[int, int], int] = defaultdict(int)  # frames where both are present
    gt_count: dict[int, int] = defaultdict(int)
    track_count: dict[int, int] = defaultdict(int)
    for frame in frames:
        where = f"video {video_id!r}, frame {frame}"
        objects = _present(gt[frame], f"{where} (ground truth)")
        tracks = _present(pred.get(frame, {}), f"{where} (prediction)")
        shapes = {m.shape for m in (*objects.values(), *tracks.values())}
        if len(shapes) > 1:
            raise InvalidMasks(f"{where}: masks of different sizes {sorted(shapes)}")
        for obj_id in objects:
            gt_count[obj_id] += 1
        for track_id in tracks:
            track_count[track_id] += 1
        if not objects or not tracks:
            continue
        shape = shapes.pop()
        radius = boundary_radius(*shape)
        g_ids, t_ids = list(objects), list(tracks)
        g_box = np.array([_box(objects[i]) for i in g_ids])[:, None]  # G x 1 x 4: y0, y1, x0, x1 inclusive
        t_box = np.array([_box(tracks[i]) for i in t_ids])[None]  # 1 x T x 4
        row_gap = np.maximum(t_box[..., 0] - g_box[..., 1], g_box[..., 0] - t_box[..., 1])
        col_gap = np.maximum(t_box[..., 2] - g_box[..., 3], g_box[..., 2] - t_box[..., 3])
        # Boundary pixels lie at most one pixel above or left of a mask's box: boxes farther apart
        # than the tolerance radius plus that pixel share no pixel and match no boundary pixel.
        near = (row_gap <= radius + 1) & (col_gap <= radius + 1)
        for a, obj_id in enumerate(g_ids):
            for b, track_id in enumerate(t_ids):
                both[obj_id, track_id] += 1
                if near[a, b]:
                    crop = _crop(g_box[a, 0], t_box[0, b], shape)
                    g, p = objects[obj_id][crop], tracks[track_id][crop]
                    j_sum[obj_id, track_id] += region_similarity(p, g)
                    f_sum[obj_id, track_id] += boundary_f_measure(p, g, radius)
    gt_ids, track_ids = tuple(sorted(gt_count)), tuple(sorted(track_count))
    j = np.zeros((len(gt_ids), len(track_ids)))
    f = np.zeros_like(j)
    counted = np.zeros(j.shape, int)
    for a, obj_id in enumerate(gt_ids):
        for b, track_id in enumerate(track_ids):
            counted[a, b] = gt_count[obj_id] + track_count[track_id] - both.get((obj_id, track_id), 0)
            j[a, b] = j_sum.get((obj_id, track_id), 0.0) / counted[a, b]
            f[a, b] = f_sum.get((obj_id, track_id), 0.0) / counted[a, b]
    return PairScores(gt_ids, track_ids, j, f, counted, np.array([gt_count[i] for i in gt_ids], int))


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def _crop(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Both boxes and one pixel around: the boundary maps (`metrics.boundary_map`) of the crop are
    those of the whole image, and outside it both masks are empty."""
    y0, x0 = max(min(a[0], b[0]) - 1, 0), max(min(a[2], b[2]) - 1, 0)
    y1, x1 = min(max(a[1], b[1]) + 2, shape[0]), min(max(a[3], b[3]) + 2, shape[1])
    return slice(y0, y1), slice(x0, x1)


@dataclass(frozen=True)
class ObjectMatch:
    """A ground-truth object and its track: the matched one when found; for a missed object the
    track closest to it (perhaps matched to another object), None when no track touches it."""

    gt_id: int
    track_id: int | None
    j: float
    f: float
    frames: int  # evaluated frames where the object is visible
    counted: bool  # frames >= min_frames
    found: bool

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


@dataclass(frozen=True)
class TrackMatching:
    """One video's objects matched to its tracks (see the module docstring)."""

    video_id: str
    objects: tuple[ObjectMatch, ...]  # every ground-truth object, counted or not
    tracks: tuple[int, ...]  # track ids present on the evaluated frames
    duplicates: tuple[int, ...]
    spurious: tuple[int, ...]
    threshold: float
    min_frames: int

    @property
    def counted(self) -> int:
        return sum(o.counted for o in self.objects)

    @property
    def found(self) -> int:
        return sum(o.counted and o.found for o in self.objects)

    @property
    def recall(self) -> float:
        return _ratio(self.found, self.counted)

    @property
    def duplicate_rate(self) -> float:
        return _ratio(len(self.duplicates), len(self.tracks))

    @property
    def matched_jf(self) -> float:
        """Mean J&F of the found counted objects with their tracks."""
        values = [o.jf for o in self.objects if o.counted and o.found]
        return float(np.mean(values)) if values else math.nan

    def report(self) -> str:
        lines = [_summary(self.video_id or "video", self.counted, self.found, len(self.tracks),
                          len(self.duplicates), len(self.spurious), self.matched_jf, self.threshold, self.min_frames)]
        for o in self.objects:
            state = "found" if o.found else "missed"
            if not o.counted:
                state += f", not counted (visible on {o.frames} < {self.min_frames} frames)"
            track = "no track" if o.track_id is None else f"track {o.track_id}, J&F {o.jf:.4f}"
            lines.append(f"  object {o.gt_id} -> {track}  ({state})")
        if self.duplicates:
            lines.append(f"  duplicate tracks: {', '.join(map(str, self.duplicates))}")
        if self.spurious:
            lines.append(f"  spurious tracks: {', '.join(map(str, self.spurious))}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"video_id": self.video_id, **_rates(self.counted, self.found, len(self.tracks), len(self.duplicates),
                                                    len(self.spurious), self.matched_jf),
                "objects": [{"gt_id": o.gt_id, "track_id": o.track_id, "J&F": o.jf, "J": o.j, "F": o.f,
                             "frames": o.frames, "counted": o.counted, "found": o.found} for o in self.objects],
                "duplicates": list(self.duplicates), "spurious": list(self.spurious)}


def match_tracks(gt: VideoMasks, pred: VideoMasks, video_id: str = "", threshold: float = 0.5,
                 min_frames: int = 1, skip_first_last: bool = False) -> TrackMatching:
    """Match one video's tracks `pred` (frame_idx -> track_id -> H x W bool) to its ground truth
    `gt` (frame_idx -> obj_id -> H x W bool) and classify every track (see the module docstring)."""
    scores = pair_scores(gt, pred, video_id, skip_first_last)
    jf = scores.jf
    counted = scores.gt_frames >= min_frames
    track_of: dict[int, int] = {}  # object row -> matched track column, found pairs only
    for rows in (np.flatnonzero(counted), np.flatnonzero(~counted)):
        free = np.array([c for c in range(len(scores.track_ids)) if c not in track_of.values()], int)
        if len(rows) == 0 or len(free) == 0:
            continue
        weight = jf[np.ix_(rows, free)]
        weight = np.where(weight >= threshold, weight, 0.0)
        for r, c in zip(*linear_sum_assignment(weight, maximize=True), strict=True):
            if jf[rows[r], free[c]] >= threshold:
                track_of[int(rows[r])] = int(free[c])
    objects = []
    for row, gt_id in enumerate(scores.gt_ids):
        col = track_of.get(row)
        if col is None and len(scores.track_ids) and jf[row].max() > 0:
            col = int(np.argmax(jf[row]))
        objects.append(ObjectMatch(gt_id, None if col is None else scores.track_ids[col],
                                   0.0 if col is None else float(scores.j[row, col]),
                                   0.0 if col is None else float(scores.f[row, col]),
                                   int(scores.gt_frames[row]), bool(counted[row]), row in track_of))
    matched = set(track_of.values())
    found_rows = list(track_of)
    duplicates, spurious = [], []
    for col, track_id in enumerate(scores.track_ids):
        if col in matched:
            continue
        if found_rows and jf[found_rows, col].max() >= threshold:
            duplicates.append(track_id)
        else:
            spurious.append(track_id)
    return TrackMatching(video_id, tuple(objects), scores.track_ids, tuple(duplicates), tuple(spurious),
                         threshold, min_frames)


@dataclass(frozen=True)
class TrackEvaluation:
    """Many videos: counts summed over videos, `matched_jf` the mean over all found objects."""

    videos: tuple[TrackMatching, ...]
    threshold: float
    min_frames: int

    @property
    def counted(self) -> int:
        return sum(v.counted for v in self.videos)

    @property
    def found(self) -> int:
        return sum(v.found for v in self.videos)

    @property
    def tracks(self) -> int:
        return sum(len(v.tracks) for v in self.videos)

    @property
    def duplicates(self) -> int:
        return sum(len(v.duplicates) for v in self.videos)

    @property
    def spurious(self) -> int:
        return sum(len(v.spurious) for v in self.videos)

    @property
    def recall(self) -> float:
        return _ratio(self.found, self.counted)

    @property
    def duplicate_rate(self) -> float:
        return _ratio(self.duplicates, self.tracks)

    @property
    def matched_jf(self) -> float:
        values = [o.jf for v in self.videos for o in v.objects if o.counted and o.found]
        return float(np.mean(values)) if values else math.nan

    def by_tag(self, tags: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[Any, TrackEvaluation]]:
        """The videos grouped by per-video tags, e.g. {video_id: {"late_entry": True}} ->
        {"late_entry": {False: TrackEvaluation, True: TrackEvaluation}}; untagged videos are left out."""
        groups: dict[str, dict[Any, list[TrackMatching]]] = defaultdict(lambda: defaultdict(list))
        for video in self.videos:
            for name, value in tags.get(video.video_id, {}).items():
                groups[name][value].append(video)
        return {name: {value: TrackEvaluation(tuple(groups[name][value]), self.threshold, self.min_frames)
                       for value in _sorted(groups[name])} for name in sorted(groups)}

    def report(self, tags: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        lines = [_summary(f"{len(self.videos)} videos", self.counted, self.found, self.tracks, self.duplicates,
                          self.spurious, self.matched_jf, self.threshold, self.min_frames), ""]
        width = max([5, *(len(v.video_id) for v in self.videos)])
        lines.append(f"{'video':<{width}}  objects  found  recall  tracks  dup  spurious  matched J&F")
        lines += [_row(v.video_id, width, v.counted, v.found, len(v.tracks), len(v.duplicates), len(v.spurious),
                       v.matched_jf) for v in self.videos]
        for name, values in self.by_tag(tags or {}).items():
            lines += ["", f"by {name}:"]
            lines += [_row(str(value), width, e.counted, e.found, e.tracks, e.duplicates, e.spurious, e.matched_jf)
                      for value, e in values.items()]
        return "\n".join(lines)

    def to_dict(self, tags: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        out = {**_rates(self.counted, self.found, self.tracks, self.duplicates, self.spurious, self.matched_jf),
               "threshold": self.threshold, "min_frames": self.min_frames,
               "videos": [v.to_dict() for v in self.videos]}
        if tags:
            out["by_tag"] = {name: {str(value): _rates(e.counted, e.found, e.tracks, e.duplicates, e.spurious,
                                                       e.matched_jf) for value, e in values.items()}
                             for name, values in self.by_tag(tags).items()}
        return out


def evaluate_tracks(gt: Mapping[str, VideoMasks], pred: Mapping[str, VideoMasks], threshold: float = 0.5,
                    min_frames: int = 1, skip_first_last: bool = False) -> TrackEvaluation:
    """`match_tracks` on every ground-truth video; each must have a prediction (extra ones are ignored)."""
    missing = sorted(v for v in gt if v not in pred)
    if missing:
        shown = ", ".join(repr(v) for v in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise InvalidMasks(f"{len(missing)} of {len(gt)} ground-truth videos have no prediction: {shown}")
    return TrackEvaluation(tuple(match_tracks(gt[v], pred[v], v, threshold, min_frames, skip_first_last)
                                 for v in sorted(gt)), threshold, min_frames)


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


def _rates(counted: int, found: int, tracks: int, duplicates: int, spurious: int, matched_jf: float) -> dict:
    def value(x: float) -> float | None:
        return None if math.isnan(x) else x

    return {"objects": counted, "found": found, "recall": value(_ratio(found, counted)), "tracks": tracks,
            "duplicates": duplicates, "duplicate_rate": value(_ratio(duplicates, tracks)), "spurious": spurious,
            "matched_J&F": value(matched_jf)}


def _number(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.4f}"


def _summary(name: str, counted: int, found: int, tracks: int, duplicates: int, spurious: int, matched_jf: float,
             threshold: float, min_frames: int) -> str:
    return (f"{name}: recall {_number(_ratio(found, counted))} ({found} of {counted} objects found at J&F >= "
            f"{threshold}, visible on >= {min_frames} frames)   duplicate rate {_number(_ratio(duplicates, tracks))} "
            f"({duplicates} of {tracks} tracks)   spurious {spurious}   matched J&F {_number(matched_jf)}")


def _row(name: str, width: int, counted: int, found: int, tracks: int, duplicates: int, spurious: int,
         matched_jf: float) -> str:
    return (f"{name:<{width}}  {counted:>7}  {found:>5}  {_number(_ratio(found, counted)):>6}  {tracks:>6}  "
            f"{duplicates:>3}  {spurious:>8}  {_number(matched_jf)}")
