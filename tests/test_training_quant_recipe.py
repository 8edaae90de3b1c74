"""int8 recipe options on a real (untrained) EfficientNet-Lite0 graph: Clip folding, float
depthwise convs, and the arch-aware default that keeps the ResNet op set unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("efficientnet_lite_pytorch")

from service.embedder import Embedder  # noqa: E402
from service.modelinfo import ModelInfo  # noqa: E402
from tests.training_helpers import covers  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.model import EmbeddingNet  # noqa: E402
from training.quantize import (  # noqa: E402
    BASE_OPS,
    calibration_batches,
    depthwise_convs,
    op_types_for,
    quantize_model,
)

SIZE = 32


@pytest.fixture(scope="module")
def lite0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained Lite0 embedder exported to ONNX with a lite0 sidecar."""
    torch.manual_seed(0)
    model = EmbeddingNet("lite0", dim=128, channels=3, input_size=SIZE).eval()
    out = export_onnx(model, tmp_path_factory.mktemp("lite0") / "m.onnx", SIZE, channels=3)
    _info({"arch": "lite0"}).write(out)
    return out


def _info(extra: dict[str, object]) -> ModelInfo:
    return ModelInfo(version="t", input_size=SIZE, channels=3, mean=[0.485, 0.456, 0.406],
                     std=[0.229, 0.224, 0.225], embedding_dim=128, extra=extra)


def _batches(model: Path) -> list[np.ndarray]:
    return calibration_batches(covers(4, size=80), ModelInfo.for_model(model), hands=[], batch=8)


def _float_weight_convs(path: Path) -> set[str]:
    """Convs whose weight does not come out of a DequantizeLinear (i.e. still float)."""
    graph = onnx.load(str(path)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    return {n.name for n in graph.node
            if n.op_type == "Conv" and producer.get(n.input[1]) != "DequantizeLinear"}


def test_arch_aware_ops_keep_the_resnet_set() -> None:
    info = _info({})
    assert op_types_for(_info({"arch": "resnet18"})) == list(BASE_OPS)
    assert op_types_for(_info({"arch": "lite0"}))[-1] == "Clip"
    assert "Clip" in op_types_for(info, "on") and "Clip" not in op_types_for(info, "off")


def test_fold_clip_removes_relu6_and_exclude_depthwise_keeps_them_float(
    lite0: Path, tmp_path: Path
) -> None:
    batches = _batches(lite0)
    plain, folded = tmp_path / "off" / "m.onnx", tmp_path / "on" / "m.onnx"
    quantize_model(lite0, plain, batches, fold_clip="off")
    info = quantize_model(lite0, folded, batches, exclude_depthwise=True)  # auto: lite0 -> on

    def clips(p: Path) -> int:
        return sum(n.op_type == "Clip" for n in onnx.load(str(p)).graph.node)

    # ReLU6 after a quantized conv is absorbed into the conv's output quantization range
    assert clips(folded) < clips(plain)
    assert info.extra["quantized_ops"] == [*BASE_OPS, "Clip"]
    dw = set(depthwise_convs(lite0))
    assert len(dw) == 16 and info.extra["float_depthwise"] == 16
    assert _float_weight_convs(folded) == dw  # exactly the depthwise convs stay float
    assert not _float_weight_convs(plain)
    imgs = covers(3, size=80, seed=5)
    fp = Embedder(lite0, threads=1).embed_images(imgs)
    for q in (plain, folded):
        q8 = Embedder(q, threads=1).embed_images(imgs)
        assert q8.shape == (3, 128) and np.isfinite(q8).all()
        assert (fp * q8).sum(1).min() > 0.5  # still the same function, coarsely
