"""Label Studio tasks -> `VideoJob`s: which regions are prompts, how they group into objects, and
where the media is. An image task becomes a one-frame job (a folder holding that frame), so that
images and videos take the same path through the runtime.

Objects: on video, each `videorectangle` region is one object and each of its enabled keyframes a
box prompt on that frame. On images, each rectangle and each brush region is one object; a
keypoint joins the first rectangle of the same label that contains it, and the keypoints left
over form one object per label.

Without prompts: a task with no regions is labelled in mode "everything" (every object the automatic
mask generator finds), unless `unprompted` is "skip". With `rectangles="detections"`, rectangles are
not objects but unlinked detections (mode "detections"): every rectangle of an image task, and every
keyframe of every video rectangle, is one box on its frame with its region's label and score; the
runtime links boxes of one object across frames by IoU and starts a track for each box no track holds,
so a detector's boxes imported frame by frame become one track per object.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from sam2.frames import open_frames
from sam2_ray.records import Detection, InvalidPrompt, Prompt, VideoJob
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
    region_score,
)
from .schema import ProjectSchema

SOURCES = ("annotations", "drafts")  # or an annotator's email, or PREDICTIONS + a model version
PREDICTIONS = "predictions:"  # "predictions:yolo-v8": the regions of that model version's latest prediction
UNPROMPTED = ("everything", "skip")  # what a task without regions becomes: a job of mode everything, or skipped
RECTANGLES = ("prompts", "detections")  # what rectangles are: one object per region, or unlinked detections


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
    """The prompt regions of a task's latest annotation (not cancelled), latest draft, latest
    annotation by one annotator, or latest prediction of one model version ("predictions:VERSION")."""
    if source == "drafts":
        candidates = task.get("drafts") or []
    elif source.startswith(PREDICTIONS):
        version = source.removeprefix(PREDICTIONS)
        candidates = [p for p in task.get("predictions") or [] if isinstance(p, dict)
                      and p.get("model_version") == version]
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


def image_detections(regions: list[dict], schema: ProjectSchema, media: Media) -> list[Detection]:
    """Each rectangle of an image task -> a detection on its one frame."""
    return [Detection(0, rectangle_to_px(r, media.width, media.height), region_label(r), region_score(r))
            for r in regions if r.get("from_name") == schema.rectangles]


def video_detections(regions: list[dict], schema: ProjectSchema, media: Media) -> list[Detection]:
    """Each keyframe of each video rectangle -> a detection on its frame (a keyframe that ends the region's
    lifespan, `enabled: false`, still shows its box on its own frame)."""
    detections = []
    for r in regions:
        if r.get("from_name") != schema.video_rectangles:
            continue
        label, score = region_label(r), region_score(r)
        for key in keyframes(r):
            if key["frame"] > media.num_frames:
                raise MalformedRegion(f"region {r.get('id')!r} (videorectangle): keyframe at frame {key['frame']} "
                                      f"is beyond the video's {media.num_frames} frames")
            detections.append(Detection(key["frame"] - 1, box_percent_to_px(key, media.width, media.height, r),
                                        label, score))
    return detections


def _as_detections(regions: list[dict], schema: ProjectSchema) -> bool:
    """Whether a task's regions are read as detections: it has rectangles, and nothing else (a keypoint or a
    brush is a prompt for one object, which a detections job does not take)."""
    boxes = schema.rectangles if schema.kind == "image" else schema.video_rectangles
    if not any(r.get("from_name") == boxes for r in regions):
        return False
    for r in regions:
        if r.get("from_name") != boxes:
            raise MalformedRegion(f"region {r.get('id', '?')!r} ({r.get('type', '?')}): with rectangles read as "
                                  "detections, a task's regions must all be rectangles")
    return True


def task_job(connection: LabelStudioConnection, task: dict, regions: list[dict], schema: ProjectSchema,
             project_id: int, cache: Path, salt: str = "", rectangles: str = "prompts") -> VideoJob:
    """One task's regions -> a job: its prompts; its rectangles as detections (`rectangles` "detections");
    or, with no regions, every object (mode "everything"). MalformedRegion or InvalidPrompt names what is
    wrong. The video id digests the prompts (or the mode and the detections), the task's data (its media)
    and `salt` (the model), so that changed prompts, media, mode or model are tracked again."""
    media = fetch_media(connection, task, schema, cache)
    ref = {"task_id": task["id"], "kind": schema.kind, "width": media.width, "height": media.height,
           "num_frames": media.num_frames, "fps": media.fps}
    name, where = f"ls-p{project_id}-t{task['id']}", f"task {task['id']}"
    data = json.dumps(task["data"], sort_keys=True, default=str)
    if not regions:
        return VideoJob(job_id(name, (), data, salt, "everything"), media.uri, source_ref=ref, mode="everything")
    if rectangles == "detections" and _as_detections(regions, schema):
        found = (image_detections if schema.kind == "image" else video_detections)(regions, schema, media)
        found = tuple(d.validated(where) for d in found)
        return VideoJob(job_id(name, (), data, salt, "detections", found), media.uri, source_ref=ref,
                        mode="detections", detections=found)
    prompts = (image_prompts if schema.kind == "image" else video_prompts)(regions, schema, media)
    if not prompts:
        raise MalformedRegion("no usable prompt regions")
    for p in prompts:
        p.validated(where).check_frame(where, media.width, media.height, media.num_frames)
    return VideoJob(job_id(name, prompts, data, salt), media.uri, tuple(prompts), ref)


def _described(source: str) -> str:
    if source.startswith(PREDICTIONS):
        return f"prediction of model version {source.removeprefix(PREDICTIONS)!r}"
    return {"drafts": "draft", "annotations": "annotation"}.get(source, f"annotation by {source}")


def read_jobs(connection: LabelStudioConnection, project_id: int, schema: ProjectSchema, source: str,
              cache: Path, tasks: list[dict] | None = None, salt: str = "", unprompted: str = "everything",
              rectangles: str = "prompts") -> tuple[list[VideoJob], list[SkippedTask]]:
    """Every task of the project -> jobs, and the tasks skipped with the reason (no prompts when
    `unprompted` is "skip", a malformed region, unreadable media). `salt` names the model, `rectangles`
    says what rectangles are (see `task_job`)."""
    if unprompted not in UNPROMPTED:
        raise ValueError(f"unprompted tasks are {' or '.join(UNPROMPTED)}, not {unprompted!r}")
    if rectangles not in RECTANGLES:
        raise ValueError(f"rectangles are {' or '.join(RECTANGLES)}, not {rectangles!r}")
    if source == PREDICTIONS:
        raise ValueError(f"name the model version whose predictions hold the regions: {PREDICTIONS}VERSION")
    annotator_id = None
    if source not in SOURCES and not source.startswith(PREDICTIONS):
        annotator_id = connection.user_id(source)
    jobs, skipped = [], []
    for task in tasks if tasks is not None else connection.tasks(project_id):
        regions = prompt_regions(task, schema, "annotations" if annotator_id is not None else source, annotator_id)
        if not regions and unprompted == "skip":
            skipped.append(SkippedTask(task["id"], f"no prompt regions in its latest {_described(source)}",
                                       unprompted=True))
            continue
        try:
            jobs.append(task_job(connection, task, regions, schema, project_id, cache, salt, rectangles))
        except (MalformedRegion, InvalidPrompt) as error:
            skipped.append(SkippedTask(task["id"], str(error)))
    return jobs, skipped
