"""The `sam2-ray` command's own surface, in-process: help on every argument, a missing subcommand, --version,
defaults that do not depend on the current folder, negative coordinates, files that are not checkpoints."""

from __future__ import annotations

import argparse
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from PIL import Image

from pipelines.cli import build_parser, main
from tests.support.paths import REPO

SAMPLE = REPO / "data" / "samples" / "shapes.png"  # 512 x 384


def _parsers(parser: argparse.ArgumentParser, prog: str = "sam2-ray"):
    """(prog, parser) for the command and every subcommand below it."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def test_every_argument_of_every_command_has_help():
    undocumented = []
    for prog, parser in _parsers(build_parser()):
        for action in parser._actions:
            if not action.help:
                undocumented.append(f"{prog} {action.option_strings or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                undocumented += [f"{prog} {choice.dest}" for choice in action._choices_actions if not choice.help]
    assert not undocumented


def test_every_address_option_says_the_default_is_a_private_local_ray():
    helps = [action.help for _, parser in _parsers(build_parser()) for action in parser._actions
             if "--address" in action.option_strings]
    assert len(helps) == 5  # autolabel, train, serve, label-studio preannotate, fiftyone propagate
    assert all("private local Ray" in h and "'auto'" in h for h in helps)


@pytest.mark.parametrize("argv, commands", [
    ([], "segment, autolabel, evaluate, export, train, serve, label-studio, samples, fiftyone"),
    (["label-studio"], "preannotate, connect"),
    (["fiftyone"], "propagate, load, evaluate, plugins"),
])
def test_a_missing_subcommand_lists_the_commands_in_one_line(argv, commands, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"choose a command: {commands}" in err
    assert f"see {' '.join(['sam2-ray', *argv])} --help" in err


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"sam2-ray {metadata.version('sam2-ray')}\n"


def test_train_default_config_is_the_packaged_one_whatever_the_current_folder(tmp_path, monkeypatch):
    import configs
    import pipelines.train

    seen = {}
    monkeypatch.setattr(pipelines.train, "run_training",
                        lambda config, *args: seen.setdefault("config", Path(config)) and tmp_path / "last.pt")
    monkeypatch.chdir(tmp_path)
    assert main(["train"]) == 0
    assert seen["config"] == Path(configs.__file__).resolve().parent / "training" / "mini.yaml"
    assert seen["config"].is_file()


def test_negative_coordinates_are_values_not_options():
    args = build_parser().parse_args(["segment", "x.png", "--point", "-5,10", "--negative", "-1.5,-2",
                                      "--box", "-4,0,20,30"])
    assert (args.point, args.negative, args.box) == ([(-5, 10)], [(-1.5, -2)], (-4, 0, 20, 30))


def test_a_negative_point_is_refused_as_outside_the_image(tmp_path, capsys):
    assert main(["segment", str(SAMPLE), "--point", "-5,10", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "sam2-ray: error: point -5,10 is outside the 512x384 image\n"


def _not_checkpoints(folder: Path) -> dict[str, Path]:
    import torch

    Image.new("RGB", (8, 8)).save(folder / "image.png")
    (folder / "notes.txt").write_text("model weights go here\n")
    (folder / "empty.pt").write_bytes(b"")
    torch.save({"model": {"w": torch.zeros(64)}}, folder / "whole.pt")
    data = (folder / "whole.pt").read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])  # an interrupted download
    with zipfile.ZipFile(folder / "arrays.npz", "w") as archive:  # a zip torch.save did not write
        archive.writestr("w.npy", b"\x93NUMPY")
    return {name: folder / name for name in ("image.png", "notes.txt", "empty.pt", "truncated.pt", "arrays.npz")}


@pytest.mark.parametrize("name", ["image.png", "notes.txt", "empty.pt", "truncated.pt", "arrays.npz"])
@pytest.mark.parametrize("command", ["segment", "train --export"])
def test_a_file_that_is_not_a_checkpoint_is_one_line_naming_it(name, command, tmp_path, capsys):
    path = _not_checkpoints(tmp_path)[name]
    argv = (["segment", str(SAMPLE), "--point", "150,120", "--checkpoint", str(path), "--out", str(tmp_path)]
            if command == "segment" else ["train", "--export", str(path), str(tmp_path / "weights.pt")])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"{path} is not a checkpoint file" in err
    assert "weights_only" not in err


def _checkpoints_that_pass_the_file_check(folder: Path) -> dict[str, Path]:
    """torch.save archives whose directory is whole, so only loading them tells what is wrong."""
    import argparse

    import torch

    torch.save({"model": {"w": torch.zeros(4)}, "args": argparse.Namespace(lr=1)}, folder / "objects.pt")
    torch.save([1, 2, 3], folder / "list.pt")
    torch.save({"model": {"w": torch.zeros(64)}}, folder / "damaged.pt")
    with zipfile.ZipFile(folder / "damaged.pt") as archive:
        pickled = next(i for i in archive.infolist() if i.filename.endswith("/data.pkl"))
    data = bytearray((folder / "damaged.pt").read_bytes())
    start = pickled.header_offset + 30 + len(pickled.filename.encode()) + len(pickled.extra)
    data[start : start + pickled.file_size] = b"\xff" * pickled.file_size  # a disk error inside the pickle
    (folder / "damaged.pt").write_bytes(bytes(data))
    return {name: folder / name for name in ("objects.pt", "list.pt", "damaged.pt")}


@pytest.mark.parametrize("name", ["objects.pt", "list.pt", "damaged.pt"])
def test_exporting_a_file_that_only_looks_like_a_checkpoint_is_one_line_naming_it(name, tmp_path, capsys):
    path = _checkpoints_that_pass_the_file_check(tmp_path)[name]
    assert main(["train", "--export", str(path), str(tmp_path / "weights.pt")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(path) in err, err
    assert "checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "weights.pt").exists()
