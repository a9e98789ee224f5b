"""What a project's labeling config tells us: image or video, which task data key holds the media,
and the names of the tags that prompts come from and predictions go to."""

from __future__ import annotations

from dataclasses import dataclass

from label_studio_sdk.label_interface import LabelInterface


@dataclass(frozen=True)
class ProjectSchema:
    kind: str  # "image" or "video"
    media_tag: str  # <Image name> or <Video name>: predictions' to_name
    data_key: str  # task.data key of the media ($image -> "image")
    keypoints: str | None = None  # <KeyPointLabels name> (image prompts)
    rectangles: str | None = None  # <RectangleLabels name> (image prompts)
    brush: str | None = None  # <BrushLabels name>: image predictions, and mask prompts
    video_rectangles: str | None = None  # <VideoRectangle name> (video prompts and tracks)
    framerate: float | None = None  # <Video framerate="..."> when a number
    labels: tuple[str, ...] = ()  # the class names predictions carry: <BrushLabels>' (image), <Labels>' (video)

    @classmethod
    def parse(cls, label_config: str) -> ProjectSchema:
        try:
            interface = LabelInterface(label_config)
        except Exception as error:  # the SDK's XML parser raises various types
            raise ValueError(f"the labeling config cannot be parsed: {error}") from None
        media = [o for o in interface.objects if o.tag in ("Image", "Video")]
        if len(media) != 1:
            raise ValueError("the labeling config needs exactly one <Image> or <Video> tag, found "
                             f"{[o.tag for o in media] or 'none'}")
        obj = media[0]
        names: dict[str, str] = {}
        label_sets: dict[str, tuple[str, ...]] = {}
        for control in interface.controls:
            if obj.name in (control.to_name or []):
                names.setdefault(control.tag, control.name)
                label_sets.setdefault(control.tag, tuple(control.labels or ()))
        framerate = None
        try:
            framerate = float(obj.attr.get("framerate", "")) or None
        except ValueError:  # "$fps" from the task data, or absent: the file's rate is used
            pass
        schema = cls(kind=obj.tag.lower(), media_tag=obj.name, data_key=str(obj.value).lstrip("$"),
                     keypoints=names.get("KeyPointLabels"), rectangles=names.get("RectangleLabels"),
                     brush=names.get("BrushLabels"), video_rectangles=names.get("VideoRectangle"),
                     framerate=framerate,
                     labels=label_sets.get("BrushLabels" if obj.tag == "Image" else "Labels", ()))
        if schema.kind == "image" and schema.brush is None:
            raise ValueError("an image project needs a <BrushLabels> tag for the predicted masks")
        if schema.kind == "video" and schema.video_rectangles is None:
            raise ValueError("a video project needs a <VideoRectangle> tag (prompts and tracks)")
        return schema

    def class_name(self, requested: str | None) -> str | None:
        """The class name written on objects that carry none (everything mode, unlabelled detections):
        `requested` when it is one of `labels`, none for "", else the first of `labels`. ValueError when
        `requested` is not a label of the config (a validating Label Studio refuses such predictions)."""
        if requested == "":
            return None
        if requested is None:
            return self.labels[0] if self.labels else None
        if requested not in self.labels:
            raise ValueError(f"the default label {requested!r} is not one of the labeling config's labels "
                             f"{list(self.labels)}")
        return requested

    @property
    def prompt_tags(self) -> set[str]:
        return {n for n in (self.keypoints, self.rectangles, self.brush, self.video_rectangles) if n}
