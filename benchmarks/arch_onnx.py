"""Untrained exports (fp32 + int8) of each backbone, RGB 128 px, for embed-speed figures.

Speed depends on the graph, not on the weights, so the ResNet50 vs ResNet18 vs Lite0 embed
times can be measured before (and apart from) their training runs. Needs torch (training
extras). Then: ``benchmarks/embed_speed.py --model OUT/*/int8.onnx OUT/*/fp32.onnx``.

    PYTHONPATH=. .venv/bin/python benchmarks/arch_onnx.py --out /tmp/speed resnet18 resnet50 lite0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tests.training_helpers import covers
from training.config import FitConfig, model_info
from training.export import export_onnx
from training.model import EmbeddingNet
from training.quantize import calibration_batches, quantize_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archs", nargs="+", help="resnet18 | resnet50 | lite0 ...")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT/<arch>/{fp32,int8}.onnx")
    a = ap.parse_args()
    torch.manual_seed(0)
    for arch in a.archs:
        cfg = FitConfig(catalog=a.out, out=a.out, arch=arch, channels=3, input_size=128)
        # Lite0 from its packaged ImageNet weights (as trained); ResNets from scratch.
        net = EmbeddingNet(arch, 128, 3, pretrained=arch == "lite0", input_size=128).eval()
        fp32 = export_onnx(net, a.out / arch / "fp32.onnx", 128, 3)
        info = model_info(cfg, f"speed-{arch}")
        info.write(fp32)
        batches = calibration_batches(covers(16, size=160), info, hands=[], seed=0, batch=16)
        quantize_model(fp32, a.out / arch / "int8.onnx", batches)  # the arch's default recipe
        print(arch, "written", flush=True)


if __name__ == "__main__":
    main()
