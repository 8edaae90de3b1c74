"""`cratewatch-train`: synth, fit, eval, export, quantize, ood, ood-distractors.

Every subcommand has --help; `fit`'s options are generated from training/config.py FitConfig.
P@k in reports = top-k accuracy (the true album among the first k)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic CCTV query set with ground truth")
    p.add_argument("--catalog", type=Path, required=True, help="covers (albums.csv + images)")
    p.add_argument("--out", type=Path, required=True, help="query set directory to write")
    p.add_argument("--n", type=int, default=5000, help="queries (default: %(default)s)")
    p.add_argument("--level", default="medium", choices=["easy", "medium", "hard", "all"],
                   help="difficulty; all = cycle the three (default: %(default)s)")
    p.add_argument("--occluder", default="paste", choices=["paste", "gligen"],
                   help="paste cut-outs, or GLIGEN inpainting (needs --gligen-model)")
    p.add_argument("--gligen-model", type=Path, default=None,
                   help="local diffusers GLIGEN inpainting checkpoint directory")
    p.add_argument("--gligen-device", default="cpu", help="torch device for GLIGEN, e.g. cuda")
    p.add_argument("--gligen-steps", type=int, default=25, help="GLIGEN denoising steps")
    p.add_argument("--hands", type=Path, default=None, help="default: <shared>/hands")
    p.add_argument("--split", type=Path, default=None, help="split.json: only its test albums")
    p.add_argument("--subset", default="test", help="split subset (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="query i uses RNG stream (seed, i)")


def _add_fit(sub: argparse._SubParsersAction) -> None:
    from training.cliargs import add_dataclass_args
    from training.config import FitConfig

    p = sub.add_parser("fit", help="train the embedder (checkpointed, resumable)",
                       description="Train the embedder. Rerun the same command to resume "
                       "from <out>/last.pt (same epoch, batch, LR schedule and sampler order).")
    add_dataclass_args(p, FitConfig)


def _fit(a: argparse.Namespace) -> None:
    from training.cliargs import dataclass_from_args
    from training.train import Fit, FitConfig

    Fit(dataclass_from_args(FitConfig, a)).run()


def _add_eval_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 accuracy (P@1/P@5) per level vs the whole "
                       "catalog (service code path)")
    p.add_argument("--model", type=Path, required=True, help="ONNX model with its sidecar")
    p.add_argument("--catalog", type=Path, required=True, help="covers ranked against")
    p.add_argument("--queries", type=Path, required=True, help="query set (queries.csv)")
    p.add_argument("--out", type=Path, default=None, help="default: <queries>/eval-<model>")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    p.add_argument("--distractors", type=Path, default=None,
                   help="extra catalog (e.g. from `ood-distractors`) ranked with the covers")
    p.add_argument("--multi-crop", default="none", choices=["none", "centre", "grid"],
                   help="score covers by the best of several sub-crops of each query "
                   "(centre: 3 embeds, grid: 6)")
    p.add_argument("--grey-views", default="on", choices=["on", "off"],
                   help="as the service's GREY_VIEWS (RGB models only): grey queries ranked "
                   "against the covers' grey renditions (default: %(default)s)")
    p = sub.add_parser("export", help="checkpoint -> ONNX + sidecar, with parity check")
    p.add_argument("--checkpoint", type=Path, required=True, help="fit checkpoint (best.pt)")
    p.add_argument("--out", type=Path, required=True,
                   help="ONNX path; the sidecar is written beside it from the checkpoint's "
                   "contract (an existing sidecar that disagrees is refused)")
    p.add_argument("--version", required=True, help="model version written to the sidecar")
    p = sub.add_parser("quantize", help="static int8 ONNX calibrated on covers + queries")
    p.add_argument("--model", type=Path, required=True, help="fp32 ONNX with its sidecar")
    p.add_argument("--out", type=Path, required=True, help="int8 ONNX path (+ sidecar)")
    p.add_argument("--catalog", type=Path, required=True, help="covers to calibrate on")
    p.add_argument("--split", type=Path, default=None, help="calibrate on its train albums")
    p.add_argument("--n-covers", type=int, default=96, help="calibration covers")
    p.add_argument("--method", default="minmax", choices=["minmax", "percentile", "entropy"],
                   help="calibration method (default: %(default)s)")
    p.add_argument("--fold-clip", default="auto", choices=["auto", "on", "off"],
                   help="quantize Clip (ReLU6) so ORT folds it into the conv: auto = on for "
                   "lite0 (sidecar extra.arch), off otherwise")
    p.add_argument("--exclude-depthwise", action="store_true",
                   help="keep the depthwise (grouped) convs in float")
    p.add_argument("--queries", type=Path, default=None, help="compare P@1 with fp32 on these")
    p.add_argument("--max-drop", type=float, default=0.01, help="allowed P@1 loss (all levels)")
    p.add_argument("--seed", type=int, default=0, help="calibration sample seed")


def _eval(a: argparse.Namespace) -> None:
    from training.evaluate import evaluate, write_report

    res = evaluate(a.model, a.catalog, a.queries, a.threads, a.distractors, a.multi_crop,
                   a.grey_views == "on")
    out = a.out or a.queries / f"eval-{a.model.stem}"
    print(write_report(res, a.model, a.queries, out, a.catalog).read_text())


def _quantize(a: argparse.Namespace) -> None:
    import numpy as np

    from service.modelinfo import ModelInfo
    from training.catalog import load_catalog, load_split, open_cover
    from training.paths import shared_data_dir
    from training.quantize import calibration_batches, quantize_model
    from training.synth.hands import load_hands

    covers = load_catalog(a.catalog)
    if a.split is not None:
        keep = set(load_split(a.split)["train"])
        covers = [c for c in covers if c.album_id in keep]
    pick = np.random.default_rng(a.seed).permutation(len(covers))[: a.n_covers]
    root = shared_data_dir()
    hands = load_hands(root / "hands") if root and (root / "hands").is_dir() else []
    info = ModelInfo.for_model(a.model)
    batches = calibration_batches([open_cover(covers[i]) for i in pick], info, hands, a.seed)
    quantize_model(a.model, a.out, batches, a.method, a.fold_clip, a.exclude_depthwise)
    print(f"wrote {a.out}")
    if a.queries is not None:
        from training.evaluate import evaluate

        fp, q8 = (evaluate(m, a.catalog, a.queries).scores for m in (a.model, a.out))
        for level in fp:
            drop = fp[level]["p@1"] - q8[level]["p@1"]
            print(f"{level}: P@1 fp32 {fp[level]['p@1']:.3f} int8 {q8[level]['p@1']:.3f} "
                  f"(drop {100 * drop:+.1f} points)")
        if fp["all"]["p@1"] - q8["all"]["p@1"] > a.max_drop:
            raise SystemExit(f"int8 P@1 drops more than {100 * a.max_drop:.1f} points")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cratewatch-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_synth(sub)
    _add_fit(sub)
    _add_eval_export(sub)
    from training.ood.cli import add_parsers as add_ood

    add_ood(sub)
    args = parser.parse_args(argv)
    if args.cmd == "fit":
        _fit(args)
    elif args.cmd == "synth":
        from training.synth_cmd import run_synth

        run_synth(args)
    elif args.cmd == "eval":
        _eval(args)
    elif args.cmd == "export":
        from training.export import export_checkpoint

        info = export_checkpoint(args.checkpoint, args.out, args.version)
        print(f"wrote {args.out}: {info.model_dump_json()}")
    elif args.cmd == "quantize":
        _quantize(args)
    elif args.cmd == "ood":
        from training.ood.cli import run_ood

        run_ood(args)
    elif args.cmd == "ood-distractors":
        from training.ood.cli import run_distractors

        run_distractors(args)


if __name__ == "__main__":
    main()
