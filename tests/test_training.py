"""Training: losses with known values, prompt simulation, the clip forward pass, the loop (resume,
freezing, fine-tuning, user data), Ray Train workers and the CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest
import torch

from sam2.build_sam import build_sam2
from sam2.checkpoint import bundled_weights, read_state_dict
from sam2.data import davis
from sam2.data.synthetic import ClipSpec, generate_clip
from sam2.modeling.sam2_base import SAM2Base
from sam2.training.clip_forward import PromptSettings, Step, forward_clip
from sam2.training.config import TrainConfig, load_train_config
from sam2.training.data import ClipSampler, DataSettings
from sam2.training.image_forward import forward_images
from sam2.training.init import align_prompt_attention
from sam2.training.losses import LossWeights, actual_iou, dice_loss, focal_loss, step_loss
from sam2.training.prompts import error_click, grid_clicks, noisy_box
from sam2.training.trainer import train
from sam2.transforms import MEAN, STD
from tests.support.models import micro_config, write_config_yaml
from tests.support.paths import REPO
from tests.support.ray_local import local_ray

SMALL_DATA = DataSettings(frames=4, max_objects=2, synthetic=ClipSpec(num_frames=8, height=64, width=96))


def _config(tmp_path, **changes) -> TrainConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    model = write_config_yaml(micro_config(), tmp_path / "micro.yaml")
    base = TrainConfig(model=str(model), out=str(tmp_path / "run"), steps=4, warmup_steps=2, log_every=2,
                       checkpoint_every=2, threads=1, data=SMALL_DATA, prompts=PromptSettings(correction_clicks=2))
    return dataclasses.replace(base, **changes)


def test_losses_have_their_known_values():
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = 1  # 4 of 16 pixels
    perfect = (target * 2 - 1) * 50
    assert focal_loss(perfect, target).item() < 1e-6 and dice_loss(perfect, target).item() < 1e-6
    empty = torch.full((1, 1, 4, 4), -50.0)
    assert dice_loss(empty, target).item() == pytest.approx(1 - 1 / 5, abs=1e-4)  # 1 - (0 + 1) / (0 + 4 + 1)
    zero = torch.zeros(1, 1, 4, 4)  # p = 0.5 everywhere: focal = alpha_t * ln2 * 0.25
    expected = (4 * 0.25 + 12 * 0.75) * np.log(2) * 0.25 / 16
    assert focal_loss(zero, target).item() == pytest.approx(expected, rel=1e-5)
    half = torch.full((1, 1, 4, 4), -50.0)
    half[..., :2, :] = 50  # 8 predicted, 4 of them right: IoU 0.5
    assert actual_iou(half, target).item() == pytest.approx(0.5)


def test_step_loss_supervises_the_best_candidate_and_ignores_masks_of_absent_objects():
    target = torch.zeros(2, 1, 8, 8)
    target[0, :, 2:6, 2:6] = 1  # object 0 present, object 1 absent
    good = (target[0] * 2 - 1) * 50
    masks = torch.stack([torch.stack([-good, good, -good])[:, 0], torch.full((3, 8, 8), 50.0)])  # B x K x H x W
    ious = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    score = torch.tensor([[10.0], [-10.0]])
    loss = step_loss(masks, ious, score, target, LossWeights())
    assert loss.mask.item() < 1e-6 and loss.dice.item() < 1e-6  # best candidate of 0; absent 1 ignored
    assert loss.iou.item() == pytest.approx(0.0, abs=1e-6)  # only the present object's IoUs count
    assert loss.obj_score.item() < 1e-3


def test_simulated_prompts_come_from_the_mask_and_its_errors():
    rng = np.random.default_rng(0)
    target = torch.zeros(1, 50, 80, dtype=torch.bool)
    target[0, 10:30, 20:60] = True
    for _ in range(20):
        corners, labels = noisy_box(target, rng)
        (x0, y0), (x1, y1) = corners[0].tolist()
        assert abs(x0 - 20) <= 4 and abs(x1 - 60) <= 4 and abs(y0 - 10) <= 2 and abs(y1 - 30) <= 2
        assert labels.tolist() == [[2, 3]]
    pred = torch.zeros_like(target)
    pred[0, 10:30, 40:79] = True  # misses the left half, spills right
    for _ in range(20):
        points, labels = error_click(target, pred, rng)
        x, y = int(points[0, 0, 0]), int(points[0, 0, 1])
        assert bool(target[0, y, x]) == bool(labels[0, 0]) and bool(target[0, y, x]) != bool(pred[0, y, x])


def test_grid_clicks_ask_for_the_object_under_each_click():
    rng = np.random.default_rng(0)
    target = torch.zeros(2, 64, 96, dtype=torch.bool)
    target[0, 8:40, 8:56] = True
    target[1, 24:56, 40:88] = True
    target[0, 24:40, 40:56] = False  # object 1 lies on top of object 0 there: only its visible part counts
    seen, cells = set(), set()
    for _ in range(20):
        points, labels, owner = grid_clicks(target, 8, 100, rng)
        assert labels.tolist() == [[1]] * len(owner) and points.shape == (len(owner), 1, 2) and 0 < len(owner) < 64
        x, y = points[:, 0, 0].long(), points[:, 0, 1].long()
        assert torch.equal(target[owner, y, x], torch.ones(len(owner), dtype=torch.bool))  # on the clicked object
        here = list(zip((x // 12).tolist(), (y // 8).tolist(), strict=True))
        assert len(set(here)) == len(here)  # one click per cell
        cells |= set(here)
        seen |= {(round(float(a) % 12), round(float(b) % 8)) for a, b in points[:, 0].tolist()}
    assert len(seen) > 40  # anywhere in the cells, not only at their centres
    assert (6, 5) in cells and (0, 0) not in cells  # object 1's cells, the backdrop's never
    _, _, owner = grid_clicks(target, 8, 5, rng)
    assert len(owner) == 5  # at most so many, at random
    assert len(grid_clicks(torch.zeros(1, 64, 96, dtype=torch.bool), 8, 16, rng)[2]) == 0


def test_image_stage_grid_clicks_are_supervised_by_the_clicked_object_with_three_masks():
    torch.manual_seed(0)
    model = SAM2Base(micro_config()).train()
    sampler = ClipSampler(dataclasses.replace(SMALL_DATA, frames=1, max_objects=3), 128)
    image, target = sampler.sample(1)
    settings = PromptSettings(grid_points=8, grid_clicks=6)
    pairs = forward_images(model, image[:1], [target[0]], np.random.default_rng(0), settings)
    assert len(pairs) == 3  # box, click, grid
    (box, _), (click, _), (grid, wanted) = pairs
    _, _, owner = grid_clicks(target[0], 8, 6, _rng_after_box_and_click(target[0]))
    assert grid.masks.shape[:2] == (len(owner), 3) and 0 < len(owner) <= 6
    assert torch.equal(wanted[:, 0], target[0][owner])
    off = forward_images(model, image[:1], [target[0]], np.random.default_rng(0))
    assert len(off) == 2 and torch.equal(off[0][0].masks, box.masks)  # no grid: the stage as before


def _rng_after_box_and_click(target: torch.Tensor) -> np.random.Generator:
    rng = np.random.default_rng(0)
    noisy_box(target, rng)
    error_click(target, None, rng)
    return rng


def test_clip_forward_trains_the_memory_path():
    torch.manual_seed(0)
    model = SAM2Base(micro_config()).train()
    images, targets = ClipSampler(SMALL_DATA, 128).sample(5)
    pairs = forward_clip(model, images, targets, PromptSettings(prob_clicks=1.0, correction_clicks=2),
                         np.random.default_rng(1))
    assert all(torch.equal(wanted[:, 0], targets[s.frame]) for s, wanted in pairs)
    steps = [s for s, _ in pairs]
    frames = [s.frame for s in steps]
    assert set(frames) == set(range(4)) and frames[0] == 0
    tracked = [s for s in steps if s.frame not in frames[:1]]
    assert tracked and all(s.masks.shape[-2:] == (128, 128) for s in steps)
    sum(s.masks.mean() + s.obj_score.mean() for s in steps).backward()
    for name in ("memory_attention", "memory_encoder", "obj_ptr_proj", "maskmem_tpos_enc", "image_encoder"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def _same_step(a: Step, b: Step) -> bool:
    return all(x.shape == y.shape and torch.allclose(x, y)
               for x, y in ((a.masks, b.masks), (a.ious, b.ious), (a.obj_score, b.obj_score)))


def test_clip_grid_clicks_are_supervised_with_no_memory_and_stay_out_of_the_memory():
    torch.manual_seed(0)
    model = SAM2Base(micro_config()).train()
    images, targets = ClipSampler(SMALL_DATA, 128).sample(5)
    mask_prompted = PromptSettings(prob_clicks=0.0, max_init_cond_frames=1, max_correction_frames=1)
    runs = {}
    for grid_points, grid_frames in ((0, "conditioning"), (8, "conditioning"), (8, "all")):
        torch.manual_seed(0)
        settings = dataclasses.replace(mask_prompted, grid_points=grid_points, grid_clicks=6, grid_frames=grid_frames)
        runs[grid_frames if grid_points else None] = forward_clip(model, images, targets, settings,
                                                                  np.random.default_rng(1))
    tracked = runs[None]  # the mask prompt on frame 0 gives no step: these are the other frames'
    for grid_frames in ("conditioning", "all"):
        rest, grid = list(runs[grid_frames]), []
        for step, _ in tracked:  # the tracked steps come out the same, in order: the grid never reaches the memory
            while not _same_step(rest[0][0], step):
                grid.append(rest.pop(0))
            rest.pop(0)
        grid += rest
        frames = [s.frame for s, _ in grid]
        assert frames == ([0] if grid_frames == "conditioning" else sorted(set(frames))) and frames[0] == 0
        assert grid_frames == "conditioning" or len(frames) > 1
        for step, wanted in grid:  # one row per grid click on an object, three masks, the object as target
            assert 0 < step.masks.shape[0] == wanted.shape[0] <= 6 and step.masks.shape[1] == 3
            assert all(any(torch.equal(row, obj) for obj in targets[step.frame]) for row in wanted[:, 0])


def _prompt_attention_peak(model: SAM2Base, point: tuple[float, float]) -> tuple[float, float]:
    """Where the first token->image attention of a click's positional encoding peaks, in input pixels."""
    encoder = model.sam_prompt_encoder
    side = model.image_size
    click = encoder.pe_layer.points(torch.tensor([[point]]), (side, side))[0]  # 1 x C
    grid = encoder.get_dense_pe()[0].flatten(1).T  # HW x C
    attention = model.sam_mask_decoder.transformer.layers[0].cross_attn_token_to_image
    scores = (attention.q_proj(click) @ attention.k_proj(grid).T)[0]
    h, w = encoder.image_embedding_size
    y, x = divmod(int(scores.argmax()), w)
    return (x + 0.5) * side / w, (y + 0.5) * side / h


def test_aligned_prompt_attention_looks_where_the_click_is():
    torch.manual_seed(0)
    model = SAM2Base(micro_config())
    clicks = [(20.0, 30.0), (100.0, 40.0), (64.0, 110.0), (10.0, 120.0)]
    stride = model.image_size / model.sam_prompt_encoder.image_embedding_size[0]
    random_misses = sum(np.hypot(*np.subtract(_prompt_attention_peak(model, c), c)) > 2 * stride for c in clicks)
    assert random_misses >= 2  # independent random projections: the peak is anywhere
    align_prompt_attention(model)
    for click in clicks:
        peak = _prompt_attention_peak(model, click)
        assert np.hypot(*np.subtract(peak, click)) <= 1.5 * stride, (click, peak)


def test_image_stage_prompts_every_object_twice_and_leaves_a_frozen_encoder_alone(tmp_path):
    torch.manual_seed(0)
    model = SAM2Base(micro_config()).train()
    sampler = ClipSampler(dataclasses.replace(SMALL_DATA, frames=1, max_objects=3), 128)
    samples = [sampler.sample(seed) for seed in (1, 2)]
    images = torch.cat([image for image, _ in samples])
    targets = [target[0] for _, target in samples]
    pairs = forward_images(model, images, targets, np.random.default_rng(0))
    assert len(pairs) == 4 and [s.frame for s, _ in pairs] == [0, 0, 1, 1]
    assert [s.masks.shape[:2] for s, _ in pairs] == [(len(targets[0]), 1), (len(targets[0]), 3),
                                                      (len(targets[1]), 1), (len(targets[1]), 3)]
    config = _config(tmp_path, stage="image", steps=2, freeze=("image_encoder",),
                     data=dataclasses.replace(SMALL_DATA, frames=1, images_per_step=2))
    torch.manual_seed(config.seed)  # what build_model starts from
    before = SAM2Base(micro_config()).state_dict()
    train(config)
    after = _weights(tmp_path / "run" / "last.pt")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("image_encoder"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("sam_mask_decoder"))


def _weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_training_resumes_where_it_stopped_and_matches_an_uninterrupted_run(tmp_path):
    whole = _config(tmp_path / "a", steps=4)
    train(whole)
    split = _config(tmp_path / "b", steps=2)
    train(split)
    train(dataclasses.replace(split, steps=4))  # picks up last.pt at step 2
    a, b = _weights(tmp_path / "a" / "run" / "last.pt"), _weights(tmp_path / "b" / "run" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "a" / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]
    assert all(np.isfinite(r[k]) for r in log for k in ("loss", "mask", "dice", "iou", "obj_score", "clips_per_s"))


def test_frozen_parts_do_not_move_and_fine_tuning_starts_from_a_checkpoint(tmp_path):
    torch.manual_seed(3)
    start = SAM2Base(micro_config())
    torch.save({"model": start.state_dict()}, tmp_path / "start.pt")
    config = _config(tmp_path, steps=2, init_checkpoint=str(tmp_path / "start.pt"), freeze=("image_encoder",))
    train(config)
    after = _weights(tmp_path / "run" / "last.pt")
    before = start.state_dict()
    encoder = [k for k in before if k.startswith("image_encoder")]
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("sam_mask_decoder"))


def test_fine_tuning_starts_from_the_bundled_model(tmp_path):
    train(_config(tmp_path, model="sam2.1_hiera_mini", steps=1, init_checkpoint="bundled", checkpoint_every=1))
    shipped = read_state_dict(bundled_weights("sam2.1_hiera_mini"))
    after = _weights(tmp_path / "run" / "last.pt")
    # one small optimiser step away from the shipped weights (a random start would be far from them)
    drift = max((after[k].float() - shipped[k].float()).abs().max().item() for k in shipped)
    assert drift < 0.01


def test_a_checkpoint_of_another_size_is_refused_with_the_keys(tmp_path):
    torch.save({"model": SAM2Base(micro_config().replace(d_model=32)).state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="mis-shaped"):
        train(_config(tmp_path, init_checkpoint=str(tmp_path / "other.pt")))


def test_fine_tuning_on_a_users_davis_folders(tmp_path):
    for i in range(2):
        clip = generate_clip(100 + i, ClipSpec(num_frames=6, height=64, width=96))
        davis.write_video(tmp_path / "data", f"v{i}", clip.frames, clip.masks)
    data = dataclasses.replace(SMALL_DATA, source=str(tmp_path / "data"))
    images, targets = ClipSampler(data, 128).sample(0)
    assert images.shape == (4, 3, 128, 128) and targets.shape[:2] == (4, targets.shape[1]) and targets[0].any()
    train(_config(tmp_path, steps=2, data=data))
    assert (tmp_path / "run" / "last.pt").is_file()


def test_a_training_clip_reads_only_its_own_frames_of_a_long_video(tmp_path, monkeypatch):
    """Frame t of the video is grey level 5t with one square object: the clip's frames must be consecutive
    picks at one stride, and only they (and their annotations) may be opened."""
    frames = np.broadcast_to(np.arange(0, 200, 5, dtype=np.uint8)[:, None, None, None], (40, 32, 48, 3))
    masks = np.zeros((40, 1, 32, 48), bool)
    masks[:, 0, 8:24, 10:30] = True
    davis.write_video(tmp_path, "long", frames, masks)
    opened = []
    real_open = davis.Image.open
    monkeypatch.setattr(davis.Image, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    data = dataclasses.replace(SMALL_DATA, source=str(tmp_path), hflip=0.0, colour_jitter=0.0, max_stride=3)
    sampler = ClipSampler(data, 64)
    for seed in range(6):
        opened.clear()
        images, targets = sampler.sample(seed)
        assert len(opened) == 2 * 4 and targets.all(dim=0).any()  # 4 JPEGs and their 4 PNGs
        grey = (images[:, 0].mean(dim=(1, 2)) * STD[0] + MEAN[0]) * 255 / 5  # ~ the frame index
        steps = torch.diff(grey.round())
        assert steps.min() == steps.max() and 1 <= steps[0] <= 3, grey


def test_shipped_training_config_reads_and_unknown_keys_are_refused(tmp_path):
    names = ("mini_image.yaml", "mini_images.yaml", "mini.yaml", "mini_points.yaml")
    stages = [load_train_config(REPO / "configs" / "training" / name) for name in names]
    assert all(config.model == "sam2.1_hiera_mini" for config in stages)
    assert [config.stage for config in stages] == ["image", "image", "video", "video"]
    assert stages[2].data.frames == 8 and stages[3].prompts.grid_frames == "all"
    assert stages[0].freeze == ("image_encoder",) and not stages[0].init_checkpoint
    assert stages[1].init_checkpoint == "outputs/train/mini_image/last.pt"  # each stage starts from the one before
    assert stages[2].init_checkpoint == "outputs/train/mini_images/last.pt"
    assert stages[3].init_checkpoint == "bundled" and stages[3].threads == 1  # stage 3 exported; reproducible
    script = (REPO / "scripts" / "train_mini.sh").read_text()
    order = ["mini_image.yaml", "mini_images.yaml", "mini.yaml", "--export outputs/train/mini/", "mini_points.yaml"]
    assert [script.index(step) for step in order] == sorted(script.index(step) for step in order)
    assert script.rstrip().endswith("--export outputs/train/mini_points/last.pt sam2/weights/sam2.1_hiera_mini.pt")
    (tmp_path / "bad.yaml").write_text("steps: 3\ndata: {frame: 8}\n")
    with pytest.raises(ValueError, match="unknown keys \\['frame'\\]"):
        load_train_config(tmp_path / "bad.yaml")
    (tmp_path / "bad.yaml").write_text("prompts: {grid_points: 16, grid_frames: every}\n")
    with pytest.raises(ValueError, match="grid_frames must be 'conditioning' or 'all', not 'every'"):
        load_train_config(tmp_path / "bad.yaml")


def test_ray_train_workers_restart_from_rays_checkpoint_when_one_dies(tmp_path):
    """Two data-parallel CPU workers; one is killed (SIGKILL) as the step-2 checkpoint reaches Ray's
    storage: Ray Train restarts the group, which resumes at step 2 from that checkpoint and finishes."""
    from sam2_ray.train import train_on_ray

    config = _config(tmp_path, steps=4)
    storage = tmp_path / "run" / "ray" / "run"
    killed: list[int] = []

    def kill_a_worker_after_the_first_checkpoint() -> None:
        deadline = time.monotonic() + 300
        while not any(storage.glob("checkpoint_*/last.pt")) and time.monotonic() < deadline:
            time.sleep(0.02)
        for process in psutil.Process().children(recursive=True):  # this test's own Ray only
            with contextlib.suppress(psutil.Error):
                if "RayTrainWorker" in " ".join(process.cmdline()):
                    process.kill()
                    killed.append(process.pid)
                    return

    with local_ray(num_cpus=2, object_store_mib=128):
        killer = threading.Thread(target=kill_a_worker_after_the_first_checkpoint, daemon=True)
        killer.start()
        final = train_on_ray(config, num_workers=2, max_failures=1)
        killer.join(timeout=1)
    assert killed, "no Ray Train worker was found to kill"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]  # the restarted group went on from step 2, not from 0
    assert torch.load(final, weights_only=True)["step"] == 4


def test_cli_trains_and_exports_weights_the_builder_loads(tmp_path):
    config = _config(tmp_path, steps=2)
    yaml_path = tmp_path / "train.yaml"
    values = dataclasses.asdict(config)
    yaml_path.write_text(json.dumps(values))  # JSON is YAML
    cli = [sys.executable, "-m", "pipelines.cli"]
    run = subprocess.run(cli + ["train", "--config", str(yaml_path), "--out", str(tmp_path / "cli")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    weights = tmp_path / "w.pt"
    run = subprocess.run(cli + ["train", "--export", str(tmp_path / "cli" / "last.pt"), str(weights)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert all(v.dtype == torch.float16 for v in _weights(weights).values() if v.is_floating_point())
    model = build_sam2(micro_config(), str(weights), device="cpu")
    assert next(model.parameters()).dtype == torch.float32
    bad = subprocess.run(cli + ["train", "--config", str(tmp_path / "nope.yaml")], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "not found" in bad.stderr
