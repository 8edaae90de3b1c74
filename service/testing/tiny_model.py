"""A tiny real ONNX embedder built with ``onnx.helper`` (no torch): seeded conv + pool + projection.

It is not smart, but it is deterministic and keeps spatial layout, so a clean image ranks its
own cover first among a few dozen procedural covers. Same contract as the shipped model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.modelinfo import ModelInfo


def build_tiny_model(path: Path, version: str = "tiny-test-1", input_size: int = 32,
                     dim: int = 128, seed: int = 0, channels: int = 1) -> Path:
    """Write ``path`` (.onnx) and its sidecar (.json); returns ``path``. ``channels`` 3: an RGB
    model (its filters weigh the colour channels differently, so colour matters to it)."""
    rng = np.random.default_rng(seed)
    filters, pool = 8, 4
    conv_w = rng.normal(0, 1, size=(filters, channels, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, size=(filters,)).astype(np.float32)
    flat = filters * (input_size // pool) ** 2
    proj = (rng.normal(0, 1, size=(flat, dim)) / np.sqrt(flat)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[pool, pool],
                         strides=[pool, pool]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "proj"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-embedder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                       ["N", channels, input_size, input_size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
        initializer=[numpy_helper.from_array(conv_w, "conv_w"),
                     numpy_helper.from_array(conv_b, "conv_b"),
                     numpy_helper.from_array(proj, "proj")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="cratewatch-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    ModelInfo(name="tiny-test", version=version, input_size=input_size, channels=channels,
              mean=[0.5] * channels, std=[0.25] * channels, embedding_dim=dim,
              extra={"built_by": "service/testing/tiny_model.py", "seed": seed}).write(path)
    return path
