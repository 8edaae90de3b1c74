"""Run the reliability tests, collect their figures and write docs/reliability.md.

    .venv/bin/python benchmarks/load.py --step-seconds 5 --step-requests 300   # load table first
    .venv/bin/python benchmarks/reliability.py

The tests write their counts as JSON when ``CRATEWATCH_RELIABILITY_OUT`` is set; this script sets
it, runs them once, and renders the page with the load table from benchmarks/reports/load.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from service.testing.hostile import MALFORMED, unusual_but_valid

ROOT = Path(__file__).resolve().parents[1]

TESTS = ["tests/test_reliability_crasher.py", "tests/test_reliability_fuzz.py",
         "tests/test_reliability_shedding.py", "tests/test_reliability_hostile.py",
         "tests/test_reliability_security.py", "tests/test_reliability_slow_bodies.py"]


def run_tests(out: Path) -> tuple[int, str]:
    env = {**os.environ, "CRATEWATCH_RELIABILITY_OUT": str(out)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           *TESTS], cwd=ROOT, env=env, capture_output=True, text=True)
    summary = next((ln for ln in reversed(proc.stdout.splitlines()) if " in " in ln), "")
    return proc.returncode, summary.strip("= ")


def load_table(path: Path) -> str:
    if not path.is_file():
        return "_No load report yet: run `benchmarks/load.py`._"
    lines = path.read_text().splitlines()
    return "\n".join(ln for ln in lines if not ln.startswith("# ")).strip()


def render(crash: dict[str, Any], fuzz: dict[str, Any], shed: dict[str, Any], summary: str,
           load: str, slow: dict[str, Any]) -> str:
    from PIL import Image

    n_valid = len(unusual_but_valid(Image.new("RGB", (8, 8))))
    template = (Path(__file__).with_name("reliability_template.md")).read_text()
    return template.format(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), summary=summary, load=load,
        n_valid=n_valid, n_malformed=len(MALFORMED),
        by_status=", ".join(f"{k}: {v}" for k, v in fuzz["by_status"].items()),
        shed_ok=shed.get("status_200", 0), shed_503=shed.get("status_503", 0),
        **{f"crash_{k}": v for k, v in crash.items()},
        **{f"fuzz_{k}": v for k, v in fuzz.items() if k != "by_status"},
        shed_requests=shed["requests"], shed_clients=shed["clients"],
        shed_limit=shed["max_inflight"],
        slow_stalled=slow["stalled_uploads"], slow_limit=slow["max_inflight"],
        slow_fast_served=slow["fast_served"], slow_fast_requests=slow["fast_requests"],
        slow_after=", ".join(f"{n} × {code}" for code, n in
                             slow["slow_after_completion"].items()),
        model_gap=("- The load table was measured with the tiny test embedder (no bundled model "
                   "yet): it shows the service's overhead, not a real network's; rerun "
                   "`benchmarks/load.py` once `models/cratewatch-embedder.onnx` exists.\n"
                   if "tiny" in load else ""),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    parser.add_argument("--load-report", type=Path,
                        default=ROOT / "benchmarks" / "reports" / "load.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cratewatch-reliability-") as tmp:
        code, summary = run_tests(Path(tmp))
        print(summary)
        if code != 0:
            print("reliability tests failed; docs not updated", file=sys.stderr)
            return code
        figures = {name: json.loads((Path(tmp) / f"{name}.json").read_text())
                   for name in ("crasher", "fuzz", "shedding", "slow_bodies")}
    text = render(figures["crasher"], figures["fuzz"], figures["shedding"], summary,
                  load_table(args.load_report), figures["slow_bodies"])
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
