"""Label Studio tasks -> `VideoJob`s: which regions are prompts, how they group into objects, and
where the media is. An image task becomes a one-frame job (a folder holding that frame), so that
images and videos take the same path through the runtime.

Objects: on video, each `videorectangle` region is one object and each of its enabled keyframes a
box prompt on that frame. On images, each rectangle and each brush region is one object; a
keypoint joins the first rectangle of the same label that contains it, and the keypoints left
over form one object per label.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from sam2.frames import open_frames
from sam2_ray.records import InvalidPrompt, Prompt, VideoJob
from sam2_ray.sources import job_id

from .connection import LabelStudioConnection
from .formats import (
    MalformedRegion,
    box_percent_to_px,
    brush_to_mask,
    keyframes,
    keypoint_to_px,
    rectangle_to_px,
    region_label,
)
from .schema import ProjectSchema

SOURCES = ("annotations", "drafts")  # or an annotator's email


@dataclass(frozen=True)
class SkippedTask:
    task_id: int
    reason: str
    unprompted: bool = False  # nothing to label, rather than regions or media that cannot be used


@dataclass(frozen=True)
class Media:
    """A task's media on local disk, as the runtime reads it."""

    uri: str  # a video file, or a one-frame folder for an image
    width: int
    height: int
    num_frames: int
    fps: float | None


def prompt_regions(task: dict, schema: ProjectSchema, source: str, annotator_id: int | None = None) -> list[dict]:
    """The prompt regions of a task's latest annotation (not cancelled), latest draft, or latest
    annotation by one annotator."""
    if source == "drafts":
        candidates = task.get("drafts") or []
    else:
        candidates = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if annotator_id is not None:
            candidates = [a for a in candidates if _user_id(a.get("completed_by")) == annotator_id]
    if not candidates:
        return []
    latest = max(candidates, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0))
    return [r for r in latest.get("result") or [] if r.get("from_name") in schema.prompt_tags]


def _user_id(user) -> int | None:
    return user.get("id") if isinstance(user, dict) else user


def fetch_media(connection: LabelStudioConnection, task: dict, schema: ProjectSchema, cache: Path) -> Media:
    """Download the task's media into `cache` (kept for re-runs) and read its size and length."""
    url = (task.get("data") or {}).get(schema.data_key)
    if not isinstance(url, str) or not url:
        raise MalformedRegion(f"task data has no {schema.data_key!r} media URL")
    name = Path(url.split("?d=")[-1].split("?")[0]).name or "media"
    # keyed by the URL too: a task whose media changed, or another server's task of the same id
    folder = cache / f"task-{task['id']}-{hashlib.sha1(url.encode()).hexdigest()[:10]}"
    path = connection.download(url, folder / name)
    if schema.kind == "image":
        frames = folder / "frames"
        if not (frames / "00000.png").is_file():
            try:
                with Image.open(path) as im:
                    frames.mkdir(exist_ok=True)
                    im.convert("RGB").save(frames / "00000.png")
            except OSError as error:
                raise MalformedRegion(f"the image {url} cannot be read: {error}") from None
        with Image.open(frames / "00000.png") as im:
            return Media(str(frames), im.width, im.height, 1, None)
    try:
        source = open_frames(str(path), name=url)
        width, height, num_frames = source.width, source.height, source.num_frames
    except ValueError as error:
        raise MalformedRegion(f"the video {url} cannot be read: {error}") from None
    return Media(str(path), width, height, num_frames, schema.framerate or _file_fps(path))


def _file_fps(path: Path) -> float | None:
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    return float(rate) if rate else None


def image_prompts(regions: list[dict], schema: ProjectSchema, media: Media) -> list[Prompt]:
    w, h = media.width, media.height
    objects: list[dict] = []
    for r in regions:
        if r.get("from_name") == schema.rectangles:
            objects.append({"box": rectangle_to_px(r, w, h), "label": region_label(r), "points": [], "labels": []})
        elif r.get("from_name") == schema.brush:
            objects.append({"mask": brush_to_mask(r, w, h), "label": region_label(r)})
    loose: dict[str | None, dict] = {}
    for r in regions:
        if r.get("from_name") != schema.keypoints:
            continue
        x, y, positive = keypoint_to_px(r, w, h)
        label = region_label(r)
        target = next((o for o in objects if "box" in o and o["label"] == label and
                       o["box"][0] <= x <= o["box"][2] and o["box"][1] <= y <= o["box"][3]), None)
        if target is None:
            target = loose.setdefault(label, {"box": None, "label": label, "points": [], "labels": []})
        target["points"].append((x, y))
        target["labels"].append(positive)
    prompts = []
    for obj_id, o in enumerate(objects + list(loose.values()), start=1):
        if "mask" in o:
            prompts.append(Prompt(obj_id, 0, mask=o["mask"], label=o["label"]))
        else:
            prompts.append(Prompt(obj_id, 0, tuple(o["points"]), tuple(o["labels"]), o["box"], label=o["label"]))
    return prompts


def video_prompts(regions: list[dict], schema: ProjectSchema, media: Media) -> list[Prompt]:
    prompts = []
    tracks = [r for r in regions if r.get("from_name") == schema.video_rectangles]
    for obj_id, r in enumerate(tracks, start=1):
        label = region_label(r)
        enabled = [k for k in keyframes(r) if k.get("enabled", True)]
        if not enabled:
            raise MalformedRegion(f"region {r.get('id')!r} (videorectangle): no enabled keyframe")
        for key in enabled:
            if key["frame"] > media.num_frames:
                raise MalformedRegion(f"region {r.get('id')!r} (videorectangle): keyframe at frame {key['frame']} "
                                      f"is beyond the video's {media.num_frames} frames")
            box = box_percent_to_px(key, media.width, media.height, r)
            prompts.append(Prompt(obj_id, key["frame"] - 1, box=box, label=label))
    return prompts


def task_job(connection: LabelStudioConnection, task: dict, regions: list[dict], schema: ProjectSchema,
             project_id: int, cache: Path, salt: str = "") -> VideoJob:
    """One task's prompt regions -> a job; MalformedRegion or InvalidPrompt names what is wrong.
    The video id digests the prompts, the task's data (its media) and `salt` (the model), so that
    changed prompts, media or model are tracked again."""
    media = fetch_media(connection, task, schema, cache)
    prompts = (image_prompts if schema.kind == "image" else video_prompts)(regions, schema, media)
    if not prompts:
        raise MalformedRegion("no usable prompt regions")
    for p in prompts:
        p.validated(f"task {task['id']}").check_frame(f"task {task['id']}", media.width, media.height,
                                                      media.num_frames)
    ref = {"task_id": task["id"], "kind": schema.kind, "width": media.width, "height": media.height,
           "num_frames": media.num_frames, "fps": media.fps}
    video_id = job_id(f"ls-p{project_id}-t{task['id']}", prompts,
                      json.dumps(task["data"], sort_keys=True, default=str), salt)
    return VideoJob(video_id, media.uri, tuple(prompts), ref)


def read_jobs(connection: LabelStudioConnection, project_id: int, schema: ProjectSchema, source: str,
              cache: Path, tasks: list[dict] | None = None, salt: str = "") -> tuple[list[VideoJob], list[SkippedTask]]:
    """Every task of the project -> jobs, and the tasks skipped with the reason (no prompts, a
    malformed region, unreadable media). `salt` names the model (see `task_job`)."""
    annotator_id = None
    if source not in SOURCES:
        annotator_id = connection.user_id(source)
    jobs, skipped = [], []
    for task in tasks if tasks is not None else connection.tasks(project_id):
        regions = prompt_regions(task, schema, "drafts" if source == "drafts" else "annotations", annotator_id)
        if not regions:
            what = {"drafts": "draft", "annotations": "annotation"}.get(source, f"annotation by {source}")
            skipped.append(SkippedTask(task["id"], f"no prompt regions in its latest {what}", unprompted=True))
            continue
        try:
            jobs.append(task_job(connection, task, regions, schema, project_id, cache, salt))
        except (MalformedRegion, InvalidPrompt) as error:
            skipped.append(SkippedTask(task["id"], str(error)))
    return jobs, skipped
