"""`cratewatch-train quantize`: static int8 (QDQ), calibrated on covers and synthetic queries."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from service.modelinfo import ModelInfo
from service.preprocess import batch_inputs
from training.contract import refuse_disagreeing_sidecar
from training.synth.hands import HandCutout
from training.synth.pipeline import QuerySynth, cover_array
from training.synth.wide import WideSynth

BASE_OPS = ("Conv", "Add", "MaxPool", "GlobalAveragePool")
# Lite0's ReLU6 is an ONNX Clip. Quantized, ORT folds it into the conv before it, so that conv's
# output is quantized over the clipped [0, 6], not over its raw (wider) range. Measured on a
# fine-tuned Lite0: OOD-val P@1 int8 0.450 -> 0.523, fp32 0.540 (docs/training-plan.md).
FOLD_CLIP_ARCHS = ("lite0",)


def op_types_for(info: ModelInfo, fold_clip: str = "auto") -> list[str]:
    """Ops to quantize: the ResNet set, plus Clip for archs whose activations are Clip nodes
    (``fold_clip`` "auto" decides by the sidecar's ``extra.arch``; "on"/"off" force it)."""
    on = info.extra.get("arch") in FOLD_CLIP_ARCHS if fold_clip == "auto" else fold_clip == "on"
    return [*BASE_OPS, "Clip"] if on else list(BASE_OPS)


def depthwise_convs(model: Path) -> list[str]:
    """Names of the grouped (depthwise) Conv nodes, to keep them float if asked."""
    graph = onnx.load(str(model)).graph
    return [n.name for n in graph.node if n.op_type == "Conv"
            and any(a.name == "group" and a.i > 1 for a in n.attribute)]


class BatchReader(CalibrationDataReader):
    """Feeds preprocessed batches to the calibrator, once."""

    def __init__(self, batches: list[np.ndarray], input_name: str = "image") -> None:
        self._it = iter([{input_name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def calibration_batches(
    covers: list[Image.Image], info: ModelInfo, hands: list[HandCutout], seed: int = 0,
    batch: int = 16,
) -> list[np.ndarray]:
    """Each cover clean (what the catalog sees) and as a medium and a hard query; for an RGB
    model also as a domain-randomised view (colour queries: the classic levels are grey)."""
    images: list[Image.Image] = []
    synths: list[Callable[[np.ndarray, np.random.Generator], Any]] = [
        QuerySynth(lv, hands=hands) for lv in ("medium", "hard")]
    arrays = [cover_array(c) for c in covers]
    if info.channels == 3:
        synths.append(WideSynth(hands, arrays))
    for i, (cover, arr) in enumerate(zip(covers, arrays, strict=True)):
        images.append(cover)
        images += [s(arr, np.random.default_rng([seed, i, j])).image
                   for j, s in enumerate(synths)]
    order = np.random.default_rng(seed).permutation(len(images))
    images = [images[i] for i in order]
    return [batch_inputs(images[i : i + batch], info) for i in range(0, len(images), batch)]


def quantize_model(
    fp32: Path, out: Path, batches: list[np.ndarray], method: str = "minmax",
    fold_clip: str = "auto", exclude_depthwise: bool = False,
) -> ModelInfo:
    """Write the int8 model and its sidecar (the fp32 sidecar with provenance updated)."""
    info = ModelInfo.for_model(fp32)
    refuse_disagreeing_sidecar(info, out)  # before the slow calibration, not after
    calib = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
             "entropy": CalibrationMethod.Entropy}[method]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        ops = op_types_for(info, fold_clip)
        exclude = depthwise_convs(prep) if exclude_depthwise else []
        quantize_static(
            str(prep), str(out), BatchReader(batches, info.input_name),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            # The head (Gemm, 512 -> 128) and the L2 normalisation stay float: the head is
            # tiny, and int8 on it was measured to wreck a young model whose embeddings share a
            # large common component (ResNet18 RGB after 3 epochs: OOD-val P@1 0.37 fp32,
            # 0.04 with the head in int8, 0.37 without it).
            op_types_to_quantize=ops, nodes_to_exclude=exclude, calibrate_method=calib,
        )
    extra = dict(info.extra)
    extra.update({"precision": "int8-static-qdq", "calibration": method,
                  "calibration_images": int(sum(len(b) for b in batches)),
                  "quantized_ops": ops, "float_depthwise": len(exclude)})
    q = info.model_copy(update={"extra": extra})
    refuse_disagreeing_sidecar(q, out)
    q.write(out)
    return q
