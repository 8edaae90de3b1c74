"""``cratewatch serve``, ``demo-catalog``, ``import-sales`` and ``calibrate``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("cratewatch")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cratewatch", description="Identify albums in crops.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--catalog", type=Path, help="catalog dir (CRATEWATCH_CATALOG)")
    serve.add_argument("--data", type=Path, help="data dir for writes (CRATEWATCH_DATA)")
    serve.add_argument("--model", type=Path, help="ONNX embedder (CRATEWATCH_MODEL)")
    serve.add_argument("--host", help="bind address (CRATEWATCH_HOST)")
    serve.add_argument("--port", type=int, help="port (CRATEWATCH_PORT)")
    serve.add_argument("--log-level", dest="log_level", help="CRATEWATCH_LOG_LEVEL")
    demo = sub.add_parser("demo-catalog", help="write the procedural demo catalog")
    demo.add_argument("--out", type=Path, required=True)
    demo.add_argument("--albums", type=int, default=40)
    demo.add_argument("--crops", type=int, default=5)
    demo.add_argument("--seed", type=int, default=7)
    sales = sub.add_parser("import-sales", help="import a sales CSV into the analytics store")
    sales.add_argument("file", type=Path, help="CSV: sold_at,album_id,quantity[,sale_id,...]")
    sales.add_argument("--catalog", type=Path, help="catalog dir (CRATEWATCH_CATALOG)")
    sales.add_argument("--data", type=Path, help="data dir (CRATEWATCH_DATA)")
    cal = sub.add_parser("calibrate", help="measure gate/acceptance thresholds of a model and "
                         "write them into its sidecar's calibration block")
    cal.add_argument("--catalog", type=Path, required=True, help="catalog the crops are run on")
    cal.add_argument("--model", type=Path, help="ONNX embedder (CRATEWATCH_MODEL)")
    cal.add_argument("--data", type=Path, required=True, help="scratch data dir (features)")
    cal.add_argument("--known", type=Path, nargs="+", required=True,
                     help="query sets (queries.csv + images) of covers in the catalog")
    cal.add_argument("--unknown", type=Path, nargs="+", required=True,
                     help="query sets of covers NOT in the catalog (the open set)")
    cal.add_argument("--target-far", type=float, default=0.01,
                     help="most open-set crops that may be accepted (share)")
    cal.add_argument("--target-wrong", type=float, default=None,
                     help="most in-catalog crops that may be accepted wrongly (share; "
                     "default: --target-far)")
    cal.add_argument("--write", action="store_true", help="write into <model>.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo-catalog":
        from service.demo import write_demo_catalog

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        write_demo_catalog(args.out, n_albums=args.albums, n_crops=args.crops, seed=args.seed)
        return 0
    if args.command == "import-sales":
        return import_sales(args)
    if args.command == "calibrate":
        return run_calibrate(args)
    return serve(args)


def import_sales(args: argparse.Namespace) -> int:
    """Print the import result as JSON; exit 1 if rows were rejected, 2 if the file was."""
    import json

    from service.analytics.db import AnalyticsUnavailable
    from service.analytics.importer import import_sales_file
    from service.analytics.sales_csv import BadSalesFile
    from service.config import Settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k in ("catalog", "data") if (v := getattr(args, k)) is not None}
    try:
        result = import_sales_file(Settings(**overrides), args.file)
    except (OSError, BadSalesFile, AnalyticsUnavailable) as exc:
        print(f"import-sales: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 1 if result["rejected"] else 0


def run_calibrate(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from service.calibrate import calibrate
    from service.config import Settings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k in ("catalog", "data", "model") if (v := getattr(args, k)) is not None}
    # The model's own thresholds are what is measured: no settings overrides apply here.
    settings = Settings(**overrides, accept_inliers=None, accept_coverage=None,
                        gate_score=None, gate_margin=None)
    calibrate(settings, args.known, args.unknown, args.target_far, args.write,
              args.target_wrong)
    return 0


def serve(args: argparse.Namespace) -> int:
    # Before FAISS (and its OpenMP runtime) loads: one OpenMP thread in every thread of the
    # process, request threads included. Parallelism comes from concurrent requests.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from service.app import create_app
    from service.config import Settings

    overrides: dict[str, Any] = {
        k: v for k in ("catalog", "data", "model", "host", "port", "log_level")
        if (v := getattr(args, k)) is not None
    }
    settings = Settings(**overrides)
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.model.is_file():
        log.error("model not found: %s (set --model or CRATEWATCH_MODEL; see README, Model)",
                  settings.model)
        return 2
    if settings.api_key is None:
        log.warning("CRATEWATCH_API_KEY is not set: anyone who can reach this port can add and "
                    "delete albums. Set it before exposing the service.")
    log.info("serving on http://%s:%s (catalog %s, data %s, model %s, %d ORT threads)",
             settings.host, settings.port, settings.catalog, settings.data, settings.model,
             settings.threads)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=level.lower(), timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
