"""Masklet store: one Parquet file per video, written atomically, plus a manifest of finished
videos. A video's file exists only once all its rows are written (temporary file + rename), so a
crash leaves nothing partial, and a re-run skips exactly the videos whose file exists.

A writer holds an exclusive `flock` on its temporary file for as long as it writes, and the kernel
drops it the moment the writer's process dies. So "the temporary files no one holds" are exactly the
dead writers' files: any process may remove them at any time (`discard_partial`), also while other
runs or replicas write to the same store, without knowing which run or attempt each file was for.
Across nodes this needs a shared filesystem with working locks (NFSv4, Lustre, CephFS), as the
manifest's appends already do; a file whose lock cannot be taken is kept.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import astuple, fields
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sam2 import rle

from .records import MaskletRow

SCHEMA = pa.schema([
    ("video_id", pa.string()),
    ("obj_id", pa.int64()),
    ("frame_idx", pa.int64()),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("rle", pa.binary()),
    ("bbox", pa.list_(pa.float32(), 4)),
    ("area", pa.int64()),
    ("score", pa.float32()),
    ("iou_pred", pa.float32()),
    ("is_prompt_frame", pa.bool_()),
    ("model", pa.string()),
    ("label", pa.string()),
])
_NAMES = [f.name for f in fields(MaskletRow)]
assert _NAMES == SCHEMA.names, "MaskletRow and the Parquet schema must list the same columns"


class VideoWriter:
    """Rows of one video streamed to a temporary file; published by `commit`, dropped by `abort`."""

    def __init__(self, store: MaskletStore, video_id: str, batch_rows: int = 512) -> None:
        self.store, self.video_id = store, video_id
        self.tmp, self._file = _create_locked(store.root / "tmp")
        self._writer = pq.ParquetWriter(self._file, SCHEMA)
        self._pending: list[MaskletRow] = []
        self._batch_rows = batch_rows
        self.rows = 0
        self.frames: set[int] = set()
        self.objects: set[int] = set()
        self._discarded: set[int] = set()

    def add(self, rows: Iterable[MaskletRow]) -> None:
        for row in rows:
            if row.video_id != self.video_id:
                raise ValueError(f"row of video {row.video_id!r} written to video {self.video_id!r}")
            self._pending.append(row)
            self.frames.add(row.frame_idx)
            self.objects.add(row.obj_id)
        if len(self._pending) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            columns = list(zip(*(astuple(r) for r in self._pending), strict=True))
            self._writer.write_table(pa.table(dict(zip(_NAMES, columns, strict=True)), schema=SCHEMA))
            self.rows += len(self._pending)
            self._pending.clear()

    def discard_objects(self, obj_ids: Iterable[int]) -> None:
        """Leave these objects' rows (written or still to come) out of the published file: prompt-free
        labelling learns only at the end which of its tracks were duplicates or spurious."""
        self._discarded |= set(obj_ids)

    def commit(self, **meta) -> Path:
        self._flush()
        self._writer.close()
        self._file.flush()
        if self._discarded & self.objects:
            self._rewrite_without(self._discarded)
            self._file.flush()
        os.fsync(self._file.fileno())
        final = self.store.path(self.video_id)
        os.replace(self.tmp, final)
        self._file.close()  # after the rename: a sweep never sees the file unlocked in tmp/
        self.store._record({"video_id": self.video_id, "rows": self.rows, "frames": len(self.frames),
                            "objects": len(self.objects), "finished": time.time(), **meta})
        return final

    def _rewrite_without(self, obj_ids: set[int]) -> None:
        """Copy the kept rows, row group by row group, into a new locked temporary file, which replaces this one."""
        path, file = _create_locked(self.store.root / "tmp")
        self.rows, self.frames, self.objects = 0, set(), set()
        with pq.ParquetWriter(file, SCHEMA) as writer:
            source = pq.ParquetFile(self.tmp)
            for group in range(source.num_row_groups):
                table = source.read_row_group(group)
                table = table.filter(pc.invert(pc.is_in(table["obj_id"], pa.array(sorted(obj_ids), pa.int64()))))
                writer.write_table(table)
                self.rows += table.num_rows
                self.frames.update(table["frame_idx"].to_pylist())
                self.objects.update(table["obj_id"].to_pylist())
        self.tmp.unlink()
        self._file.close()
        self.tmp, self._file = path, file

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)
        self._file.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _create_locked(folder: Path) -> tuple[Path, BinaryIO]:
    """A new temporary file in `folder`, locked. A sweep may remove it in the instant between its creation
    and the lock (it looked dead); the lock is then on an orphan, so make another. Names are never reused,
    so a sweep that removes a path removes the file it found unlocked."""
    while True:
        path = folder / f"{uuid.uuid4().hex}.parquet"
        file = open(path, "xb")
        fcntl.flock(file, fcntl.LOCK_EX)
        if path.exists() and os.stat(path).st_ino == os.fstat(file.fileno()).st_ino:
            return path, file
        file.close()


class MaskletStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        (self.root / "videos").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.jsonl"

    def path(self, video_id: str) -> Path:
        return self.root / "videos" / f"{quote(video_id, safe='')}.parquet"

    def is_done(self, video_id: str) -> bool:
        return self.path(video_id).is_file()

    def done(self) -> set[str]:
        """Ids of the videos whose file is complete (the files are the truth; the manifest adds
        counts and timings)."""
        return {unquote(p.name[: -len(".parquet")]) for p in (self.root / "videos").glob("*.parquet")}

    def discard_partial(self) -> int:
        """Remove the temporary files of writers that died (no live writer holds their lock); safe while
        other writers run. Returns how many were removed."""
        removed = 0
        for path in (self.root / "tmp").glob("*.parquet"):
            try:
                with open(path, "rb") as file:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    path.unlink()
                    removed += 1
            except OSError:  # held by a live writer, gone meanwhile, or locks unsupported: keep it
                continue
        return removed

    def writer(self, video_id: str) -> VideoWriter:
        return VideoWriter(self, video_id)

    def write_video(self, video_id: str, rows: Iterable[MaskletRow], **meta) -> Path:
        writer = self.writer(video_id)
        try:
            writer.add(rows)
        except BaseException:
            writer.abort()
            raise
        return writer.commit(**meta)

    def _record(self, entry: dict) -> None:
        with open(self.manifest_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
            fcntl.flock(f, fcntl.LOCK_UN)

    def manifest(self) -> dict[str, dict]:
        """The latest manifest entry of each finished video."""
        entries: dict[str, dict] = {}
        if self.manifest_path.is_file():
            for line in self.manifest_path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    entries[entry["video_id"]] = entry
        return {k: v for k, v in entries.items() if self.is_done(k)}

    # ------------------------------------------------------------------------------------ reading
    def read_video(self, video_id: str, columns: list[str] | None = None) -> pa.Table:
        """The video's rows; `columns` reads only those (a summary pass need not read the masks)."""
        if not self.is_done(video_id):
            raise KeyError(f"video {video_id!r} is not in the store {self.root}")
        return pq.read_table(self.path(video_id), schema=SCHEMA, columns=columns)

    def rows(self, video_id: str) -> Iterator[MaskletRow]:
        for record in self.read_video(video_id).to_pylist():
            record["bbox"] = tuple(record["bbox"])
            yield MaskletRow(**record)

    def masklets(self, video_id: str, obj_id: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """(obj_id, frame_idx, H x W bool mask) in object, then frame order."""
        rows = sorted((r for r in self.rows(video_id) if obj_id is None or r.obj_id == obj_id),
                      key=lambda r: (r.obj_id, r.frame_idx))
        for r in rows:
            yield r.obj_id, r.frame_idx, rle.decode(r.rle, r.height, r.width)

    def video_masks(self, video_id: str) -> dict[int, dict[int, np.ndarray]]:
        """frame_idx -> obj_id -> H x W bool: a video as `sam2.evaluation` scores it."""
        masks: dict[int, dict[int, np.ndarray]] = {}
        for obj_id, frame_idx, mask in self.masklets(video_id):
            masks.setdefault(frame_idx, {})[obj_id] = mask
        return masks

    def table(self) -> pa.Table:
        """Every finished video's rows as one Arrow table."""
        files = sorted((self.root / "videos").glob("*.parquet"))
        if not files:
            return SCHEMA.empty_table()
        return pa.concat_tables(pq.read_table(f, schema=SCHEMA) for f in files)
