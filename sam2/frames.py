"""The one video reader: lazy, memory-bounded access to the frames of any video source.

`open_frames(source)` accepts a video file, a folder of JPEG/PNG frames, a T x H x W x 3 uint8
array or a list of H x W x 3 arrays, any iterator of frames (a generator, a camera), or a
`PushFrames` queue fed by another thread. Frames are decoded only when asked for, so memory is
bounded by one chunk of frames, never by the length of the video (Meta's predictor pre-decodes
every frame as 12 MiB of float32). Every frame handed out is a fresh H x W x 3 uint8 RGB array,
C-contiguous and writable, that the caller owns.

Video files and frame indices: on open, the packets of the video stream are demuxed once (no
decoding; a few bytes of index per frame) and frame i is the packet with the i-th smallest
presentation timestamp, which also counts the frames when the container's own count is 0 or
wrong. Reading from frame i seeks to the keyframe at or before it and decodes forward, mapping
each decoded frame back to its index through its timestamp; if the seek lands after frame i
(MPEG-TS demuxers do) the read retries from one keyframe earlier. Files whose packets lack
timestamps (raw .h264 streams) are counted by decoding them once and always read from the start.

Damaged files: a file that cannot be opened (not a video; an mp4 truncated before its index) is
a ValueError from `open_frames`. A file that opens holds the frames whose data is present (a
truncated mkv or fast-start mp4 is shorter); a frame that is present but cannot be decoded stops
iteration with a ValueError naming the video and that frame. Rotation metadata is ignored:
frames come as stored, like Meta's readers.

Sources are meant for one consumer at a time; only `PushFrames` is thread-safe.
"""

from __future__ import annotations

import operator
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CHUNK_SIZE = 16  # frames held at once by iter_reverse and by the random-access cache

IndexedFrame = tuple[int, np.ndarray]  # (frame index, H x W x 3 uint8)


def open_frames(source, *, name: str | None = None) -> FrameSource:
    """A `FrameSource` for a video path, a frame folder, an array or list of frames, an iterator
    of frames, or a `PushFrames`. `name` is used in error messages."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, PushFrames):
        return _StreamFrames(iter(source), name or source.name, push=source)
    if isinstance(source, str | Path):
        path, name = Path(source), name or str(source)
        if path.is_dir():
            return _FolderFrames(path, name)
        if path.is_file():
            return _VideoFileFrames(path, name)
        raise ValueError(f"{name}: no such video file or frame folder")
    if isinstance(source, np.ndarray | list | tuple):
        return _ArrayFrames(source, name or "array")
    if isinstance(source, Iterable):
        return _StreamFrames(iter(source), name or "stream")
    raise ValueError(f"{name or 'source'}: cannot read frames from a {type(source).__name__}; expected a video "
                     "path, a frame folder, a T x H x W x 3 uint8 array, an iterable of frames or PushFrames")


class FrameSource:
    """The frames of one video, read lazily. `seekable` sources (files, folders, arrays) allow
    any access; streams (iterators, `PushFrames`) can only be read forward once."""

    seekable = True

    def __init__(self, name: str) -> None:
        self.name = name
        self._height = self._width = 0
        self._num_frames: int | None = None

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    @property
    def num_frames(self) -> int | None:
        """Number of frames; None while unknown (streams before they end)."""
        return self._num_frames

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[IndexedFrame]:
        """(i, frame) for i = start, ..., stop - 1 (to the end when stop is None), decoded lazily."""
        start = self._check_index(start, "start", allow_end=True)
        stop = self._num_frames if stop is None else self._check_index(stop, "stop", allow_end=True)
        if stop is not None and stop < start:
            raise ValueError(f"{self.name}: stop {stop} is before start {start}")
        return self._read(start, stop)

    def iter_reverse(self, start: int, stop: int = -1, *, chunk_size: int = CHUNK_SIZE) -> Iterator[IndexedFrame]:
        """(i, frame) for i = start, start - 1, ..., stop + 1, holding at most `chunk_size`
        decoded frames: each chunk is decoded forward, then handed out last to first."""
        self._require_seekable()
        start = self._check_index(start, "start")
        stop = operator.index(stop)
        if not -1 <= stop <= start:
            raise ValueError(f"{self.name}: reverse stop {stop} must be between -1 and start {start}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        return self._read_reverse(start, stop, chunk_size)

    def frame(self, idx: int) -> np.ndarray:
        """Frame `idx` as H x W x 3 uint8 (random access; seekable sources only)."""
        self._require_seekable()
        return self._frame(self._check_index(idx, "frame index"))

    def _read(self, start: int, stop: int | None) -> Iterator[IndexedFrame]:
        for i in range(start, stop):
            yield i, self._frame(i)

    def _frame(self, idx: int) -> np.ndarray:
        raise NotImplementedError

    def _read_reverse(self, start: int, stop: int, chunk_size: int) -> Iterator[IndexedFrame]:
        hi = start + 1
        while hi > stop + 1:
            lo = max(hi - chunk_size, stop + 1)
            chunk = [frame for _, frame in self._read(lo, hi)]
            while chunk:  # pop, so each frame is released once handed out
                yield lo + len(chunk) - 1, chunk.pop()
            hi = lo

    def _check_index(self, idx: int, what: str, allow_end: bool = False) -> int:
        idx = operator.index(idx)
        n = self._num_frames
        if idx < 0 or (self.seekable and (idx > n or (idx == n and not allow_end))):
            extent = f"{n} frames" if n is not None else "a stream"
            raise ValueError(f"{self.name}: {what} {idx} is outside the video ({extent})")
        return idx

    def _require_seekable(self) -> None:
        if not self.seekable:
            raise ValueError(f"{self.name}: this source can only be read forward, frame after frame (iter_frames); "
                             "it has no random or reverse access")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self._num_frames} frames of {self._height}x{self._width}>"


class _ArrayFrames(FrameSource):
    """Frames already in memory (T x H x W x 3 array or list of H x W x 3 arrays); copies out."""

    def __init__(self, frames: np.ndarray | list | tuple, name: str) -> None:
        super().__init__(name)
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
                raise ValueError(f"{name}: expected a T x H x W x 3 uint8 array with T >= 1, "
                                 f"got {_describe(frames)}")
        else:
            if len(frames) == 0:
                raise ValueError(f"{name}: the list of frames is empty")
            size = None
            for i, frame in enumerate(frames):
                size = check_frame(frame, f"{name}: frame {i}", size).shape[:2]
        self._frames = frames
        self._num_frames = len(frames)
        self._height, self._width = frames[0].shape[:2]

    def _frame(self, idx: int) -> np.ndarray:
        return _owned(self._frames[idx])


class _FolderFrames(FrameSource):
    """A folder of .jpg/.jpeg/.png frames (any case), decoded one file at a time."""

    def __init__(self, folder: Path, name: str) -> None:
        super().__init__(name)
        files = [p for p in folder.iterdir()
                 if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
        if not files:
            raise ValueError(f"{name}: the folder has no .jpg/.jpeg/.png frames")
        self._files = _frame_order(files, name)
        self._num_frames = len(self._files)
        try:
            with Image.open(self._files[0]) as image:  # reads the header only
                self._width, self._height = image.size
        except Exception as e:  # PIL raises many types for damaged files
            raise ValueError(f"{name}: frame 0 ({self._files[0].name}) cannot be read as an image ({e})") from e

    def _frame(self, idx: int) -> np.ndarray:
        path = self._files[idx]
        try:
            with Image.open(path) as image:
                frame = np.array(image.convert("RGB"))
        except Exception as e:  # PIL raises many types for damaged files
            raise ValueError(f"{self.name}: frame {idx} ({path.name}) cannot be read as an image ({e})") from e
        if frame.shape[:2] != (self._height, self._width):
            raise ValueError(f"{self.name}: frame {idx} ({path.name}) is {frame.shape[0]}x{frame.shape[1]} but "
                             f"frame 0 ({self._files[0].name}) is {self._height}x{self._width}")
        return frame


def _frame_order(files: list[Path], name: str) -> list[Path]:
    """By the integer value of the stem when every stem is an integer (Meta's convention: 0.jpg,
    00001.jpg, ...), else natural order of the names (frame2 before frame10)."""
    if all(re.fullmatch(r"\d+", p.stem, re.ASCII) for p in files):
        files = sorted(files, key=lambda p: int(p.stem))
        for a, b in zip(files, files[1:], strict=False):
            if int(a.stem) == int(b.stem):
                raise ValueError(f"{name}: {a.name} and {b.name} are both frame number {int(a.stem)}")
        return files
    return sorted(files, key=lambda p: [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.name)])


class _SeekOvershoot(Exception):
    """The seek landed after the frame asked for; nothing has been handed out yet."""


class _VideoFileFrames(FrameSource):
    """A video file read with PyAV: indexed by demuxing once, decoded lazily by seeking."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__(name)
        self._path = path
        self._cache: tuple[int, list[np.ndarray]] | None = None  # (first index, frames) of one chunk
        with self._opened() as (container, stream):
            self._width, self._height = stream.codec_context.width, stream.codec_context.height
            pts, keys = [], []
            try:
                for packet in container.demux(stream):
                    if packet.size and not packet.is_discard:
                        pts.append(packet.pts)
                        keys.append(packet.is_keyframe)
            except av.FFmpegError as e:
                raise ValueError(f"{name}: the video cannot be read past frame {len(pts)} ({e})") from e
        if None in pts or len(set(pts)) != len(pts):
            self._pts = None  # no usable timestamps: count by decoding, always read from the start
            self._num_frames = self._count_decoded()
        else:
            order = np.argsort(pts, kind="stable")
            self._pts = np.asarray(pts, np.int64)[order]
            rank = np.empty(len(pts), np.int64)
            rank[order] = np.arange(len(pts))
            self._key_idx = np.sort(rank[np.asarray(keys, bool)])  # frame indices of keyframes
            self._num_frames = len(pts)
        if self._num_frames == 0:
            raise ValueError(f"{name}: the video has no frames")
        if not (self._width and self._height):
            first = next(self._read(0, 1))[1]
            self._height, self._width = first.shape[:2]

    @contextmanager
    def _opened(self):
        try:
            container = av.open(str(self._path))
        except (av.FFmpegError, OSError) as e:
            raise ValueError(f"{self.name}: cannot be opened as a video ({e})") from e
        try:
            if not container.streams.video:
                raise ValueError(f"{self.name}: the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: most H.264 files have one slice per frame
            yield container, stream
        finally:
            container.close()

    def _count_decoded(self) -> int:
        n = 0
        with self._opened() as (container, stream):
            try:
                for _ in container.decode(stream):
                    n += 1
            except av.FFmpegError as e:
                raise ValueError(f"{self.name}: decoding failed at frame {n} ({e})") from e
        return n

    def _read(self, start: int, stop: int | None) -> Iterator[IndexedFrame]:
        if start >= stop:
            return
        key = start
        while True:
            try:
                yield from self._decode(start, stop, self._keyframe_pts(key) if key >= 0 else None)
                return
            except _SeekOvershoot:  # some demuxers (MPEG-TS) land late: aim one keyframe earlier
                k = int(np.searchsorted(self._key_idx, key, side="right")) - 1
                key = int(self._key_idx[k]) - 1 if k >= 0 else -1

    def _keyframe_pts(self, idx: int) -> int | None:
        """Timestamp of the last keyframe at or before frame idx; None: decode from the file start."""
        if self._pts is None:
            return None
        k = int(np.searchsorted(self._key_idx, idx, side="right")) - 1
        return int(self._pts[self._key_idx[k]]) if k >= 0 and self._key_idx[k] > 0 else None

    def _decode(self, start: int, stop: int, seek_ts: int | None) -> Iterator[IndexedFrame]:
        expected, decoded, seen_earlier = start, 0, seek_ts is None
        damaged = start  # the frame whose packet is being decoded, for error messages
        with self._opened() as (container, stream):
            try:
                if seek_ts is not None:
                    container.seek(seek_ts, stream=stream, backward=True)
                for packet in container.demux(stream):
                    damaged = self._index_of(packet.pts, expected)
                    if packet.is_corrupt:  # e.g. the last, partial packet of a truncated file
                        raise ValueError(f"{self.name}: the video data is damaged near frame {damaged}")
                    for frame in packet.decode():
                        idx = decoded if self._pts is None else self._index_of(frame.pts, None)
                        decoded += 1
                        if idx is None:
                            raise ValueError(f"{self.name}: near frame {expected} the decoder produced a frame "
                                             f"with timestamp {frame.pts}, which no packet of the file has")
                        if idx < start:
                            seen_earlier = True
                            continue
                        if idx != expected:  # a frame went missing: damaged data, or the seek went too far
                            if expected == start and not seen_earlier:
                                raise _SeekOvershoot
                            raise ValueError(f"{self.name}: frame {expected} could not be decoded (damaged data)")
                        yield idx, self._to_rgb(frame, idx)
                        expected += 1
                        if expected == stop:
                            return
            except av.FFmpegError as e:  # frames still in the decoder may reference the damaged one: dropped
                raise ValueError(f"{self.name}: the video data is damaged near frame {damaged}; frames from "
                                 f"{expected} on cannot be decoded ({e})") from e
        if expected == start and not seen_earlier:  # the seek went past the frame, or to the end
            raise _SeekOvershoot
        raise ValueError(f"{self.name}: frame {expected} could not be decoded (the stream ended early; "
                         f"{self._num_frames} frames expected)")

    def _index_of(self, pts: int | None, default: int | None) -> int | None:
        """Frame index of a timestamp of this stream (default if unknown)."""
        if self._pts is None or pts is None:
            return default
        j = int(np.searchsorted(self._pts, pts))
        return j if j < len(self._pts) and self._pts[j] == pts else default

    def _to_rgb(self, frame: av.VideoFrame, idx: int) -> np.ndarray:
        if self._height and (frame.height, frame.width) != (self._height, self._width):
            raise ValueError(f"{self.name}: frame {idx} is {frame.height}x{frame.width} but the video is "
                             f"{self._height}x{self._width}")
        return np.array(frame.to_ndarray(format="rgb24"), order="C")  # copy: the view aliases the decoder's buffer

    def _frame(self, idx: int) -> np.ndarray:
        first = idx - idx % CHUNK_SIZE
        if self._cache is None or self._cache[0] != first:
            self._cache = None  # release the old chunk before decoding the new one
            self._cache = (first, [f for _, f in self._read(first, min(first + CHUNK_SIZE, self._num_frames))])
        return self._cache[1][idx - first].copy()


class _StreamFrames(FrameSource):
    """Frames from an iterator: forward-only, length known once it ends."""

    seekable = False

    def __init__(self, frames: Iterator, name: str, push: PushFrames | None = None) -> None:
        super().__init__(name)
        self._frames = frames
        self._push = push  # its frames are already checked copies
        self._next = 0  # index of the next frame handed out
        self._peeked: np.ndarray | None = None
        self._ended = False

    @property
    def height(self) -> int:
        """Waits for the first frame (a PushFrames source blocks until one is pushed)."""
        self._peek()
        return self._height

    @property
    def width(self) -> int:
        self._peek()
        return self._width

    @property
    def num_frames(self) -> int | None:
        if self._ended:
            return self._next
        if self._push is not None and self._push.closed:
            return self._push.num_pushed
        return None

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[IndexedFrame]:
        start = self._check_index(start, "start")
        if start < self._next:
            raise ValueError(f"{self.name}: frame {start} was already read and this source can only be read "
                             f"forward (the next frame is {self._next})")
        return super().iter_frames(start, stop)

    def _read(self, start: int, stop: int | None) -> Iterator[IndexedFrame]:
        while stop is None or self._next < stop:
            frame = self._peek()
            if frame is None:
                return
            self._peeked = None
            idx, self._next = self._next, self._next + 1
            if idx >= start:
                yield idx, frame

    def _peek(self) -> np.ndarray | None:
        """The next frame without consuming it; None at the end."""
        if self._peeked is None and not self._ended:
            try:
                frame = next(self._frames)
            except StopIteration:
                self._ended = True
                if self._next == 0:
                    raise ValueError(f"{self.name}: the stream has no frames") from None
                return None
            size = (self._height, self._width) if self._height else None
            frame = check_frame(frame, f"{self.name}: frame {self._next}", size)
            self._peeked = frame if self._push is not None else _owned(frame)
            self._height, self._width = frame.shape[:2]
        return self._peeked


class PushFrames:
    """Frames handed over one at a time by a producer (a camera callback, another thread):
    `push(frame)` ... `close()`. Iterating yields frames as they arrive until closed. At most
    `maxsize` frames wait in the queue: a producer faster than the consumer blocks in `push`.
    Pushed frames are copied, so the producer may reuse its buffer."""

    def __init__(self, maxsize: int = 4, name: str = "stream") -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.name = name
        self._maxsize = maxsize
        self._queue: deque[np.ndarray] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._pushed = 0
        self._size: tuple[int, int] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def num_pushed(self) -> int:
        return self._pushed

    def push(self, frame: np.ndarray, timeout: float | None = None) -> None:
        """Queue one H x W x 3 uint8 RGB frame, waiting while the queue is full (TimeoutError
        after `timeout` seconds)."""
        with self._cond:
            check_frame(frame, f"{self.name}: pushed frame {self._pushed}", self._size)
            frame = _owned(frame)
            if not self._cond.wait_for(lambda: len(self._queue) < self._maxsize or self._closed, timeout):
                raise TimeoutError(f"{self.name}: the consumer took no frame for {timeout} s")
            if self._closed:
                raise ValueError(f"{self.name}: push after close")
            self._queue.append(frame)
            self._pushed += 1
            self._size = frame.shape[:2]
            self._cond.notify_all()

    def close(self) -> None:
        """No more frames: iteration ends once the queued frames are taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                frame = self._queue.popleft()
                self._cond.notify_all()
            yield frame


def check_frame(frame, where: str, size: tuple[int, int] | None) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{where}: expected an H x W x 3 uint8 RGB array, got {_describe(frame)}")
    if size is not None and frame.shape[:2] != size:
        raise ValueError(f"{where}: frame is {frame.shape[0]}x{frame.shape[1]} but earlier frames are "
                         f"{size[0]}x{size[1]} (all frames of a video must have one size)")
    return frame


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"a {type(x).__name__}"


def _owned(frame: np.ndarray) -> np.ndarray:
    return np.array(frame, order="C")
