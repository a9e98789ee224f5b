"""`sam2-ray fiftyone ...`: the FiftyOne integration from the command line.

    sam2-ray fiftyone propagate DATASET --prompt-field keyframes [--label-field sam2] [--view NAME]
    sam2-ray fiftyone propagate DATASET --detections-field detections   # a track per detected object
    sam2-ray fiftyone propagate DATASET                                  # every object the model finds
    sam2-ray fiftyone load DATASET --store outputs/masklets [--label-field sam2]
    sam2-ray fiftyone evaluate DATASET --pred-field sam2 --gt-field gt [--eval-key sam2_eval]
    sam2-ray fiftyone plugins      # the folder to put in FIFTYONE_PLUGINS_DIR for the App operator

The Python API of `propagate` is pipelines/fiftyone_propagate.py; the App plugin is pipelines/plugins/fiftyone/.

FiftyOne's database: FIFTYONE_DATABASE_URI when set, else FiftyOne's own mongod, else the one
scripts/setup.sh installed into the venv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.arguments import ADDRESS_HELP
from pipelines.errors import InvalidInput

PLUGINS_DIR = Path(__file__).resolve().parent / "plugins"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="fiftyone_command", metavar="COMMAND", help="what to do with the dataset",
                                     parser_class=type(parser))

    prop = commands.add_parser("propagate", help="masks for the prompted objects of a dataset or saved view, for "
                               "the objects its detections show, or for every object the model finds")
    prop.add_argument("dataset", help="FiftyOne dataset name")
    objects = prop.add_mutually_exclusive_group()
    objects.add_argument("--prompt-field",
                         help="Detections (boxes) or Keypoints (clicks), tied by index (neither this nor "
                              "--detections-field: the model finds every object, the config's auto section)")
    objects.add_argument("--detections-field",
                         help="Detections on any frames, without index: each starts a track or joins the one its "
                              "box overlaps; tracks keep the detections' class names")
    prop.add_argument("--label-field", default="sam2", help="where the masklets go (default: sam2)")
    prop.add_argument("--segmentation-field", help="also write a Segmentation of track ids per frame here")
    prop.add_argument("--view", help="a saved view of the dataset (default: every sample)")
    prop.add_argument("--model", help="config name or YAML path (default: inferred from --checkpoint, else the "
                      "config's model, the bundled sam2.1_hiera_mini and its trained weights); without --checkpoint "
                      "the weights are random")
    prop.add_argument("--checkpoint", help="official or project checkpoint (.pt), or 'bundled'")
    prop.add_argument("--config", type=Path, help="pipeline YAML: its model, pool and auto section (keyframes, "
                      "generator, track matching) (default: configs/pipelines/autolabel.yaml)")
    prop.add_argument("--address", help=ADDRESS_HELP)
    prop.add_argument("--replicas", type=int, help="model replicas (default: the config's, 1)")
    prop.add_argument("--gpus", type=float, help="GPUs per replica (default: the config's, 0)")
    prop.add_argument("--store", type=Path, help="keep the masklet store here (needed with a remote --address)")
    prop.add_argument("--serve-url", help="run through a running Serve app instead of a Ray job (--prompt-field only)")
    prop.add_argument("--no-review", action="store_true", help="skip review routing")

    load = commands.add_parser("load", help="write an existing masklet store to a dataset's samples")
    load.add_argument("dataset", help="FiftyOne dataset name")
    load.add_argument("--store", type=Path, required=True, help="masklet store folder (e.g. sam2-ray autolabel's)")
    load.add_argument("--label-field", default="sam2", help="where the masklets go (default: sam2)")
    load.add_argument("--segmentation-field", help="also write a Segmentation of track ids per frame here")
    load.add_argument("--view", help="a saved view of the dataset (default: every sample)")
    load.add_argument("--no-review", action="store_true", help="skip review routing")

    ev = commands.add_parser("evaluate", help="J&F and FiftyOne's mask evaluation against a ground-truth field")
    ev.add_argument("dataset", help="FiftyOne dataset name")
    ev.add_argument("--pred-field", default="sam2",
                    help="predicted Detections with instance masks, tracks by index (default: sam2)")
    ev.add_argument("--gt-field", required=True, help="ground-truth Detections with instance masks, tracks by index")
    ev.add_argument("--eval-key", default="sam2_eval",
                    help="the name FiftyOne keeps the evaluation under (default: sam2_eval)")
    ev.add_argument("--view", help="a saved view of the dataset (default: every sample)")

    commands.add_parser("plugins", help="print the folder to set as FIFTYONE_PLUGINS_DIR for the App operator")


def _collection(name: str, view: str | None):
    import fiftyone as fo

    from integrations.fiftyone.database import use_project_mongod

    use_project_mongod()
    if not fo.dataset_exists(name):
        raise InvalidInput(f"no FiftyOne dataset {name!r} (known: {', '.join(fo.list_datasets()) or 'none'})")
    dataset = fo.load_dataset(name)
    if view is None:
        return dataset
    if not dataset.has_saved_view(view):
        raise InvalidInput(f"dataset {name!r} has no saved view {view!r} (known: {dataset.list_saved_views()})")
    return dataset.load_saved_view(view)


def run(args: argparse.Namespace) -> int:
    if args.fiftyone_command == "plugins":
        print(PLUGINS_DIR)
        return 0
    from integrations.fiftyone import evaluate_masklets, load_store
    from integrations.fiftyone.review import DEFAULT_RULES
    from pipelines.fiftyone_propagate import propagate
    from pipelines.settings import DEFAULT_CONFIG

    collection = _collection(args.dataset, args.view)
    try:
        if args.fiftyone_command == "propagate":
            result = propagate(collection, args.prompt_field, args.label_field, model=args.model,
                               checkpoint=args.checkpoint, address=args.address, store=args.store,
                               segmentation_field=args.segmentation_field,
                               review=None if args.no_review else DEFAULT_RULES,
                               replicas=args.replicas, num_gpus=args.gpus, serve_url=args.serve_url,
                               config=args.config or DEFAULT_CONFIG, detections_field=args.detections_field)
            print(result.report())
            return 1 if result.failed else 0
        if args.fiftyone_command == "load":
            loaded = load_store(collection, args.store, args.label_field, args.segmentation_field,
                                review=None if args.no_review else DEFAULT_RULES)
            print(f"{loaded.samples} samples loaded ({loaded.frames} frames), {loaded.flagged_frames} frames flagged"
                  f"; {len(loaded.unmatched)} stored videos match no sample")
            return 0
        evaluation = evaluate_masklets(collection, args.pred_field, args.gt_field, args.eval_key)
        print(evaluation.report())
        return 0
    except ValueError as error:  # bad fields, prompts or model: one line, not a traceback
        raise InvalidInput(str(error)) from None
