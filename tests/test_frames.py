"""The video reader: every kind of source yields the same frames, lazily and with memory bounded by
a chunk; files are indexed and seeked correctly; bad input is a ValueError naming the source."""

from __future__ import annotations

import threading
import tracemalloc
import wave
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from sam2.frames import FrameSource, PushFrames, open_frames
from sam2.transforms import video_frame_to_input
from tests.support.clips import make_clip, write_folder, write_mp4

T, H, W = 12, 96, 128


@pytest.fixture(scope="module")
def clip():
    return make_clip(T, H, W)


@pytest.fixture(scope="module")
def long_clip():
    return make_clip(40, H, W, seed=1)


def encode(frames: np.ndarray, path: Path, codec: str = "libx264", gop: int = 8) -> Path:
    """Like write_mp4, but any container/codec and a keyframe every `gop` frames, so seeks happen."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.gop_size = gop
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def decode_all(path: Path) -> np.ndarray:
    """Every frame of a file by plain sequential PyAV decoding: what the reader must reproduce."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])


def frames_of(source: FrameSource, **kw) -> tuple[list[int], np.ndarray]:
    pairs = list(source.iter_frames(**kw))
    for _, f in pairs:
        assert f.dtype == np.uint8 and f.flags.c_contiguous and f.flags.writeable and f.ndim == 3
    return [i for i, _ in pairs], np.stack([f for _, f in pairs])


# --- every source kind ---------------------------------------------------------------------------

def test_png_folder_array_list_generator_and_push_yield_identical_pixels(clip, tmp_path):
    folder = write_folder(clip.frames, tmp_path / "png", ext="png")
    push = PushFrames(maxsize=2)
    producer = threading.Thread(target=lambda: ([push.push(f) for f in clip.frames], push.close()))
    producer.start()
    sources = [open_frames(folder), open_frames(clip.frames), open_frames(list(clip.frames)),
               open_frames(f for f in clip.frames), open_frames(push)]
    for source in sources:
        assert (source.height, source.width) == (H, W)
        indices, frames = frames_of(source)
        assert indices == list(range(T)) and np.array_equal(frames, clip.frames), source.name
        assert source.num_frames == T
    producer.join()
    assert [s.seekable for s in sources] == [True, True, True, False, False]


def test_frames_handed_out_are_copies_the_caller_owns(clip):
    source = open_frames(clip.frames)
    source.frame(3)[:] = 0
    next(source.iter_frames())[1][:] = 0
    assert np.array_equal(source.frame(3), clip.frames[3]) and np.array_equal(source.frame(0), clip.frames[0])


def test_jpeg_folder_matches_its_own_decode_in_meta_order(clip, tmp_path):
    folder = write_folder(clip.frames, tmp_path / "jpg")
    source = open_frames(folder)
    _, frames = frames_of(source)
    expected = np.stack([np.asarray(Image.open(folder / f"{i:05d}.jpg").convert("RGB")) for i in range(T)])
    assert np.array_equal(frames, expected)
    assert source.name == str(folder)


def test_folder_orders_integer_stems_by_value_else_naturally_and_ignores_other_files(clip, tmp_path):
    numbered = tmp_path / "numbered"
    numbered.mkdir()
    for stem, i in [("10", 2), ("9", 1), ("0", 0)]:
        Image.fromarray(clip.frames[i]).save(numbered / f"{stem}.PNG")
    (numbered / "notes.txt").write_text("not a frame")
    (numbered / ".hidden.png").write_bytes(b"macOS metadata")
    assert np.array_equal(frames_of(open_frames(numbered))[1], clip.frames[:3])

    named = tmp_path / "named"
    named.mkdir()
    for stem, i in [("frame10", 2), ("frame2", 0), ("frame3", 1)]:
        Image.fromarray(clip.frames[i]).save(named / f"{stem}.png")
    assert np.array_equal(frames_of(open_frames(named))[1], clip.frames[:3])


# --- video files ---------------------------------------------------------------------------------

def test_mp4_frame_count_and_pixels_match_a_full_decode(long_clip, tmp_path):
    path = write_mp4(long_clip.frames, tmp_path / "clip.mp4")
    source = open_frames(path)
    full = decode_all(path)
    assert source.num_frames == len(full) == 40 and (source.height, source.width) == (H, W)
    assert np.array_equal(frames_of(source)[1], full)
    assert np.abs(full.astype(int) - long_clip.frames).mean() < 12  # it really is the clip, lossy


@pytest.mark.parametrize("name,codec", [("clip.mp4", "libx264"), ("clip.mkv", "libx264"), ("clip.webm", "libvpx-vp9"),
                                        ("clip.avi", "mpeg4"), ("clip.mov", "libx264"), ("clip.ts", "libx264")])
def test_seeking_reads_start_and_any_frame_exactly_as_the_full_decode(long_clip, tmp_path, name, codec):
    path = encode(long_clip.frames, tmp_path / name, codec)
    source = open_frames(path)
    full = decode_all(path)
    assert source.num_frames == len(full) == 40
    indices, frames = frames_of(source, start=7)
    assert indices == list(range(7, 40)) and np.array_equal(frames, full[7:])
    indices, frames = frames_of(source, start=17, stop=25)  # 17 is mid-GOP (keyframes every 8)
    assert indices == list(range(17, 25)) and np.array_equal(frames, full[17:25])
    for i in np.random.default_rng(0).permutation(40):
        assert np.array_equal(source.frame(int(i)), full[i]), i


def test_frame_count_comes_from_the_packets_when_the_container_has_none(long_clip, tmp_path):
    path = encode(long_clip.frames, tmp_path / "clip.mkv")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # Matroska stores no count
    assert open_frames(path).num_frames == 40


def test_video_without_timestamps_is_counted_by_decoding_and_read_from_the_start(long_clip, tmp_path):
    path = tmp_path / "clip.h264"
    with av.open(str(path), "w", format="h264") as container:  # raw Annex-B stream: no pts at all
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for frame in long_clip.frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    source = open_frames(path)
    full = decode_all(path)
    assert source.num_frames == 40
    assert np.array_equal(frames_of(source, start=30)[1], full[30:])
    assert np.array_equal(np.stack([f for _, f in source.iter_reverse(39, chunk_size=6)]), full[::-1])


def test_a_seek_that_lands_too_late_falls_back_to_decoding_from_the_start(long_clip, tmp_path):
    path = encode(long_clip.frames, tmp_path / "clip.mp4")
    source = open_frames(path)
    full = decode_all(path)
    # As a demuxer that lands a keyframe too late: asked for frame 9's keyframe (8), it gives 16.
    source._keyframe_pts = lambda start: int(source._pts[min(start + 8, 39)])
    for start in (9, 20, 39):
        assert np.array_equal(frames_of(source, start=start)[1], full[start:])


def test_iter_reverse_yields_the_reversed_decode_holding_at_most_one_chunk(long_clip, tmp_path):
    path = encode(long_clip.frames, tmp_path / "clip.mp4")
    source = open_frames(path)
    full = decode_all(path)
    decoded, read = 0, source._read

    def counting_read(start, stop):
        nonlocal decoded
        for pair in read(start, stop):
            decoded += 1
            yield pair

    source._read = counting_read
    handed_out = 0
    for idx, frame in source.iter_reverse(39, chunk_size=4):
        assert decoded - handed_out <= 4  # decoded but not yet handed out
        assert idx == 39 - handed_out and np.array_equal(frame, full[idx])
        handed_out += 1
    assert handed_out == 40 and decoded == 40
    assert [i for i, _ in source.iter_reverse(30, stop=20)] == list(range(30, 20, -1))
    assert [i for i, _ in source.iter_reverse(0)] == [0]


def test_nearby_random_access_decodes_one_chunk(long_clip, tmp_path):
    source = open_frames(encode(long_clip.frames, tmp_path / "clip.mp4"))
    calls, read = [], source._read
    source._read = lambda start, stop: (calls.append((start, stop)), read(start, stop))[1]
    for i in (5, 3, 9, 0, 15):
        source.frame(i)
    assert calls == [(0, 16)]


def test_array_folder_reverse_is_direct(clip, tmp_path):
    for source in (open_frames(clip.frames), open_frames(write_folder(clip.frames, tmp_path / "png", ext="png"))):
        assert np.array_equal(np.stack([f for _, f in source.iter_reverse(T - 1, chunk_size=5)]), clip.frames[::-1])


# --- streams -------------------------------------------------------------------------------------

def test_generator_is_forward_only_with_length_known_at_its_end(clip):
    source = open_frames(f for f in clip.frames)
    assert source.num_frames is None and not source.seekable
    assert (source.height, source.width) == (H, W)  # peeks the first frame; it is not lost
    with pytest.raises(ValueError, match="stream: .*only be read forward"):
        source.iter_reverse(3)
    with pytest.raises(ValueError, match="only be read forward"):
        source.frame(0)
    indices, frames = frames_of(source, start=3, stop=6)
    assert indices == [3, 4, 5] and np.array_equal(frames, clip.frames[3:6])
    with pytest.raises(ValueError, match="frame 2 was already read"):
        source.iter_frames(2)
    indices, frames = frames_of(source, start=6)  # resumes where it stopped
    assert indices == list(range(6, T)) and np.array_equal(frames, clip.frames[6:])
    assert source.num_frames == T


def test_push_frames_from_another_thread_blocks_a_fast_producer(clip):
    push = PushFrames(maxsize=2, name="camera")
    source = open_frames(push)
    pushed = []

    def produce():
        for frame in clip.frames:
            scratch = frame.copy()
            push.push(scratch)
            scratch[:] = 0  # the producer reuses its buffer: pushed frames were copied
            pushed.append(len(pushed))
        push.close()

    producer = threading.Thread(target=produce)
    producer.start()
    first = next(source.iter_frames())
    producer.join(timeout=0.2)
    assert producer.is_alive() and len(pushed) <= 3  # waiting for the consumer, not filling memory
    assert source.num_frames is None
    rest = list(source.iter_frames(1))
    producer.join()
    assert np.array_equal(np.stack([first[1]] + [f for _, f in rest]), clip.frames)
    assert source.num_frames == T
    with pytest.raises(ValueError, match="camera: this source can only be read forward"):
        source.iter_reverse(0)


def test_push_times_out_and_rejects_frames_after_close():
    push = PushFrames(maxsize=1)
    frame = np.zeros((4, 4, 3), np.uint8)
    push.push(frame)
    with pytest.raises(TimeoutError):
        push.push(frame, timeout=0.05)
    push.close()
    with pytest.raises(ValueError, match="after close"):
        push.push(frame)
    assert open_frames(push).num_frames == 1


# --- bad input -----------------------------------------------------------------------------------

def test_missing_path_names_it(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope.mp4'}: no such video file or frame folder"):
        open_frames(tmp_path / "nope.mp4")


def test_files_that_are_not_videos_are_rejected_at_open(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello, I am not a video\n")
    with pytest.raises(ValueError, match=f"{text}: cannot be opened as a video"):
        open_frames(text)
    audio = tmp_path / "tone.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, np.int16).tobytes())
    with pytest.raises(ValueError, match=f"{audio}: the file has no video stream"):
        open_frames(audio)


def test_mp4_truncated_to_half_its_bytes_cannot_be_opened(long_clip, tmp_path):
    data = write_mp4(long_clip.frames, tmp_path / "clip.mp4").read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])  # the index (moov) is written last: it is gone
    with pytest.raises(ValueError, match=f"{half}: cannot be opened as a video"):
        open_frames(half)


def test_truncated_mkv_holds_the_frames_whose_data_is_present(long_clip, tmp_path):
    path = encode(long_clip.frames, tmp_path / "clip.mkv")
    full = decode_all(path)
    data = path.read_bytes()
    half = tmp_path / "half.mkv"
    half.write_bytes(data[: len(data) // 2])
    source = open_frames(half)
    assert 0 < source.num_frames < 40
    assert np.array_equal(frames_of(source)[1], full[: source.num_frames])


def test_damaged_packet_stops_iteration_naming_the_video_and_frame(long_clip, tmp_path):
    path = write_mp4(long_clip.frames, tmp_path / "clip.mp4")
    full = decode_all(path)
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    pos, size = packets[20]
    data = bytearray(path.read_bytes())
    data[pos:pos + size] = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    source = open_frames(path)
    assert source.num_frames == 40  # the damage is only found when decoding
    got = []
    with pytest.raises(ValueError, match=rf"{path}: the video data is damaged near frame \d+; frames from \d+ on"):
        for idx, frame in source.iter_frames():
            got.append(idx)
            assert np.array_equal(frame, full[idx])  # nothing damaged is handed out before the error
    assert got == list(range(len(got))) and len(got) < 40


def test_bad_folders_are_rejected_naming_the_folder_or_file(clip, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"{empty}: the folder has no .jpg/.jpeg/.png frames"):
        open_frames(empty)
    (empty / "readme.txt").write_text("no frames here")
    with pytest.raises(ValueError, match="has no .jpg"):
        open_frames(empty)

    mixed = write_folder(clip.frames[:3], tmp_path / "mixed", ext="png")
    Image.fromarray(clip.frames[0][:50]).save(mixed / "00003.png")
    (mixed / "00004.png").write_text("not a png")
    source = open_frames(mixed)
    with pytest.raises(ValueError, match=r"mixed: frame 3 \(00003.png\) is 50x128 but frame 0 \(00000.png\) is 96x128"):
        list(source.iter_frames())
    with pytest.raises(ValueError, match=r"frame 4 \(00004.png\) cannot be read as an image"):
        source.frame(4)

    duplicates = write_folder(clip.frames[:2], tmp_path / "dup", ext="png")
    Image.fromarray(clip.frames[1]).save(duplicates / "1.png")
    with pytest.raises(ValueError, match=r"00001.png and 1.png are both frame number 1|1.png and 00001.png"):
        open_frames(duplicates)


@pytest.mark.parametrize("bad,message", [
    (np.zeros((4, 8, 8), np.uint8), r"array: expected a T x H x W x 3 uint8 array.*shape \(4, 8, 8\)"),
    (np.zeros((2, 8, 8, 3), np.float32), r"array: expected a T x H x W x 3 uint8 array.*float32"),
    (np.zeros((0, 8, 8, 3), np.uint8), r"array: expected a T x H x W x 3 uint8 array with T >= 1"),
    ([], "array: the list of frames is empty"),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)], "array: frame 1: frame is 8x9 but earlier"),
    ([np.zeros((8, 8, 3), np.uint8), "frame.jpg"], r"array: frame 1: expected an H x W x 3 uint8 RGB array, got a str"),
    (42, "cannot read frames from a int"),
])
def test_bad_arrays_are_rejected_at_open(bad, message):
    with pytest.raises(ValueError, match=message):
        open_frames(bad)


def test_bad_stream_frames_are_rejected_naming_the_frame():
    frames = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)]
    with pytest.raises(ValueError, match="cam: frame 2: frame is 9x8 but earlier frames are 8x8"):
        list(open_frames(iter(frames), name="cam").iter_frames())
    with pytest.raises(ValueError, match=r"stream: frame 0: expected an H x W x 3 uint8 RGB array.*int64"):
        list(open_frames(iter([np.zeros((8, 8, 3), np.int64)])).iter_frames())
    with pytest.raises(ValueError, match="stream: the stream has no frames"):
        list(open_frames(iter([])).iter_frames())
    push = PushFrames(name="cam")
    push.push(frames[0])
    with pytest.raises(ValueError, match="cam: pushed frame 1: frame is 9x8"):
        push.push(frames[2])


def test_frame_index_outside_the_video_names_index_and_length(clip, tmp_path):
    for source in (open_frames(clip.frames), open_frames(write_mp4(clip.frames, tmp_path / "clip.mp4"))):
        with pytest.raises(ValueError, match=rf"{source.name}: frame index 99 is outside the video \(12 frames\)"):
            source.frame(99)
        with pytest.raises(ValueError, match="frame index -1 is outside"):
            source.frame(-1)
        with pytest.raises(ValueError, match="stop 13 is outside the video"):
            source.iter_frames(0, 13)
        with pytest.raises(ValueError, match="start 12 is outside the video"):
            source.iter_reverse(12)
        assert list(source.iter_frames(12)) == []


# --- memory --------------------------------------------------------------------------------------

def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to read resident memory")
def test_a_long_video_is_decoded_in_bounded_memory(tmp_path):
    frames = make_clip(600, 120, 160, num_objects=1).frames
    path = write_mp4(frames, tmp_path / "long.mp4")
    frame_bytes, all_frames = frames[0].nbytes, frames.nbytes  # 57.6 kB, 34.6 MB
    del frames
    source = open_frames(path)
    assert source.num_frames == 600
    list(source.iter_frames(0, 5))  # warm up the decoder so its code pages count in the baseline

    tracemalloc.start()
    base_rss, peak_rss, count = rss_bytes(), 0, 0
    for idx, _frame in source.iter_frames():
        count += 1
        if idx % 25 == 0:
            peak_rss = max(peak_rss, rss_bytes())
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 600
    assert peak_traced < 8 * frame_bytes
    assert peak_rss - base_rss < all_frames / 3

    tracemalloc.start()  # the measurement sees frames that are kept
    kept = [frame for _, frame in source.iter_frames(0, 50)]
    assert tracemalloc.get_traced_memory()[1] > 50 * frame_bytes
    tracemalloc.stop()
    del kept


# --- model input ---------------------------------------------------------------------------------

def meta_load_img_as_tensor(path: Path, image_size: int) -> torch.Tensor:
    """sam2==1.1.0 `load_video_frames_from_jpg_images` for one frame, transcribed step by step."""
    img_np = np.array(Image.open(path).convert("RGB").resize((image_size, image_size))) / 255.0
    images = torch.zeros(1, 3, image_size, image_size, dtype=torch.float32)
    images[0] = torch.from_numpy(img_np).permute(2, 0, 1)
    images -= torch.tensor((0.485, 0.456, 0.406), dtype=torch.float32)[:, None, None]
    images /= torch.tensor((0.229, 0.224, 0.225), dtype=torch.float32)[:, None, None]
    return images[0]


@pytest.mark.parametrize("size", [64, 96, 257])  # smaller, equal to the height, larger than the frame
def test_video_frame_to_input_is_bit_exact_with_metas_jpeg_path(clip, tmp_path, size):
    folder = write_folder(clip.frames[:3], tmp_path / "jpg")
    for idx, frame in open_frames(folder).iter_frames():
        x = video_frame_to_input(frame, size)
        assert x.shape == (3, size, size) and x.dtype == torch.float32 and x.is_contiguous()
        assert torch.equal(x, meta_load_img_as_tensor(folder / f"{idx:05d}.jpg", size))


def test_video_frame_to_input_leaves_a_frame_of_the_model_size_unresampled():
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = video_frame_to_input(frame, 32)
    mean, std = torch.tensor((0.485, 0.456, 0.406))[:, None, None], torch.tensor((0.229, 0.224, 0.225))[:, None, None]
    assert torch.equal(x, (torch.from_numpy(frame / 255.0).permute(2, 0, 1).float() - mean) / std)
    with pytest.raises(ValueError, match="video frame: expected an H x W x 3 uint8"):
        video_frame_to_input(frame.astype(np.float32), 32)
