"""`cratewatch-train export`: checkpoint -> ONNX (+ sidecar), checked and parity-tested."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from service.modelinfo import ModelInfo
from training.contract import ContractMismatch, checkpoint_info, refuse_disagreeing_sidecar
from training.model import EmbeddingNet

__all__ = ["ContractMismatch", "export_checkpoint", "load_checkpoint"]

def load_checkpoint(path: Path) -> tuple[EmbeddingNet, dict[str, Any]]:
    """The model of a ``fit`` checkpoint (``last.pt`` / ``best.pt``), in eval mode, and its dict."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg, info = ck["config"], checkpoint_info(ck)
    model = EmbeddingNet(cfg["arch"], info.embedding_dim, info.channels,
                         input_size=info.input_size)
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def export_onnx(model: torch.nn.Module, out: Path, input_size: int, channels: int = 1) -> Path:
    """Write ONNX: input "image" (N, C, S, S), output "embedding" (N, D), dynamic batch."""
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(2, channels, input_size, input_size)
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated but stable for a plain CNN; its warnings are noise
        warnings.simplefilter("ignore", DeprecationWarning)
        _torch_export(model, dummy, out)
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    return out


def _torch_export(model: torch.nn.Module, dummy: torch.Tensor, out: Path) -> None:
    torch.onnx.export(
        model.eval(), (dummy,), str(out), input_names=["image"], output_names=["embedding"],
        dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=17,
        dynamo=False,
    )


def check_parity(model: torch.nn.Module, onnx_path: Path, inputs: np.ndarray,
                 atol: float = 1e-4) -> float:
    """assert torch and ONNX Runtime agree on ``inputs``; return the max abs difference."""
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(inputs)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(["embedding"], {"image": inputs})[0]
    np.testing.assert_allclose(got, ref, atol=atol, rtol=1e-3)
    return float(np.abs(got - ref).max())


def onnx_input_shape(path: Path) -> list[int | str]:
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


def export_checkpoint(ckpt: Path, out: Path, version: str, seed: int = 0) -> ModelInfo:
    """Export a checkpoint, check it, test parity on random inputs, write the sidecar from the
    checkpoint's contract (refusing a disagreeing sidecar already at ``out``)."""
    model, ck = load_checkpoint(ckpt)
    contract = checkpoint_info(ck)
    refuse_disagreeing_sidecar(contract, out)
    size, ch = contract.input_size, contract.channels
    export_onnx(model, out, size, ch)
    if onnx_input_shape(out)[1:] != [ch, size, size]:
        raise ContractMismatch(f"exported input {onnx_input_shape(out)} is not (N, {ch}, "
                               f"{size}, {size})")
    x = np.random.default_rng(seed).normal(0, 1, (3, ch, size, size)).astype(np.float32)
    diff = check_parity(model, out, x)
    extra = {**contract.extra, "arch": ck["config"]["arch"], "epoch": ck["epoch"],
             "train_seconds": round(ck["seconds"]), "best_selection_score": ck.get("best"),
             "precision": "fp32", "parity_max_abs": diff, "checkpoint": ckpt.name}
    info = contract.model_copy(update={"version": version, "extra": extra})
    info.write(out)
    return info
