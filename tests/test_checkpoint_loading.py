"""Checkpoints load by path, strictly, tensors only; configs resolve from every common spelling."""

from __future__ import annotations

import pickle

import pytest
import torch

from sam2.build_sam import build_sam2
from sam2.checkpoint import checkpoint_file, read_state_dict
from sam2.config import canonical_name, load_config


def _save(model, path, wrap=True):
    torch.save({"model": model.state_dict()} if wrap else model.state_dict(), path)
    return path


@pytest.mark.parametrize("config", ["sam2.1_hiera_t", "sam2_hiera_t", "sam2.1_hiera_s"])
def test_config_is_inferred_from_checkpoint_keys(tmp_path, config):
    torch.manual_seed(0)
    source = build_sam2(config, device="cpu")
    model = build_sam2(ckpt_path=_save(source, tmp_path / "ckpt.pt"), device="cpu")
    assert model.config.name == config
    for (k, a), (_, b) in zip(source.state_dict().items(), model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_bare_state_dict_is_accepted(tmp_path):
    source = build_sam2("sam2.1_hiera_t", device="cpu")
    model = build_sam2("sam2.1_hiera_t", _save(source, tmp_path / "bare.pt", wrap=False), device="cpu")
    assert torch.equal(model.no_mem_embed, source.no_mem_embed)


def test_wrong_size_lists_missing_and_misshaped_keys(tmp_path):
    ckpt = _save(build_sam2("sam2.1_hiera_t", device="cpu"), tmp_path / "t.pt")
    with pytest.raises(ValueError) as err:
        build_sam2("sam2.1_hiera_b+", ckpt, device="cpu")
    message = str(err.value)
    assert "does not fit config 'sam2.1_hiera_b+'" in message
    assert "missing (" in message and "image_encoder.trunk.blocks.12.norm1.weight" in message
    assert "mis-shaped (" in message and "image_encoder.trunk.pos_embed: checkpoint (1, 96, 7, 7)" in message


def test_sam2_1_checkpoint_in_sam2_config_lists_unexpected_keys(tmp_path):
    ckpt = _save(build_sam2("sam2.1_hiera_t", device="cpu"), tmp_path / "t21.pt")
    with pytest.raises(ValueError, match=r"unexpected \(3\)[\s\S]*obj_ptr_tpos_proj.weight"):
        build_sam2("sam2_hiera_t", ckpt, device="cpu")


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoint_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": _Payload()}, f)
    with pytest.raises(ValueError, match="not a checkpoint file of tensors") as err:
        build_sam2("sam2.1_hiera_t", path, device="cpu")
    assert "code ran" not in capsys.readouterr().out
    assert "weights_only" not in str(err.value)  # torch's advice to load it anyway is not ours to give


@pytest.mark.parametrize("name, content", [
    ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
    ("notes.txt", b"weights go here\n"),
    ("empty.pt", b""),
])
def test_a_file_that_is_not_a_checkpoint_is_named_in_one_line_by_the_one_reader(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    for read in (checkpoint_file, read_state_dict, lambda p: build_sam2("sam2.1_hiera_t", p, device="cpu")):
        with pytest.raises(ValueError, match="is not a checkpoint file") as err:
            read(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_truncated_checkpoint_is_not_a_checkpoint_file(tmp_path):
    whole = _save(build_sam2("sam2.1_hiera_t", device="cpu"), tmp_path / "whole.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="cut.pt is not a checkpoint file"):
        build_sam2("sam2.1_hiera_t", cut, device="cpu")


def test_missing_and_foreign_files_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        build_sam2("sam2.1_hiera_t", tmp_path / "nope.pt", device="cpu")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"linear.weight": torch.zeros(2, 2)}}, foreign)
    with pytest.raises(ValueError, match="no Hiera trunk"):
        build_sam2(ckpt_path=foreign, device="cpu")


@pytest.mark.parametrize("spelling", [
    "sam2.1_hiera_t", "configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny", "sam2.1_hiera_tiny.pt",
    "facebook/sam2.1-hiera-tiny",
])
def test_config_spellings(spelling):
    assert canonical_name(spelling) == "sam2.1_hiera_t"
    assert load_config(spelling).trunk.stages == (1, 2, 7, 2)


def test_meta_style_builder_call():
    model = build_sam2("configs/sam2.1/sam2.1_hiera_b+.yaml", device="cpu", mode="eval", apply_postprocessing=False)
    assert model.config.name == "sam2.1_hiera_b+" and not model.training
    assert not model.sam_mask_decoder.dynamic_multimask_via_stability


def test_unknown_config_and_bad_yaml(tmp_path):
    with pytest.raises(ValueError, match="unknown model config 'sam3_hiera_t'.*sam2.1_hiera_t"):
        load_config("sam3_hiera_t")
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_size: 512\nwindow_size: 9\n")
    with pytest.raises(ValueError, match=r"unknown config keys \['window_size'\]"):
        load_config(bad)
    with pytest.raises(ValueError, match="hydra overrides"):
        build_sam2("sam2.1_hiera_t", hydra_overrides_extra=["++model.x=1"], device="cpu")


def test_bundled_weights_load_by_name_and_other_configs_say_what_ships():
    """`bundled` is the shipped trained model (fp16 file, fp32 model); a config without shipped weights gets
    one line naming those that exist, never a random model."""
    from sam2.checkpoint import bundled_weights, read_state_dict

    model = build_sam2("sam2.1_hiera_mini", "bundled", device="cpu")
    shipped = read_state_dict(bundled_weights("sam2.1_hiera_mini"))
    key = "sam_mask_decoder.iou_token.weight"
    assert model.state_dict()[key].dtype == torch.float32
    assert torch.equal(model.state_dict()[key], shipped[key].float())
    assert bundled_weights("sam2.1_hiera_mini").stat().st_size <= 20 * 2**20
    with pytest.raises(ValueError, match=r"no bundled weights for sam2.1_hiera_t.*\['sam2.1_hiera_mini'\]"):
        build_sam2("sam2.1_hiera_t", "bundled", device="cpu")
