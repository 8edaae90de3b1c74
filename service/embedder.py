"""ONNX Runtime embedder: images in, L2-normalised float32 vectors out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from service.modelinfo import ModelInfo
from service.preprocess import batch_inputs, grey_rendition

# The catalog's views: the cover as is, and its grey rendition (for grey and IR-night crops).
COLOUR_VIEW, GREY_VIEW = "", "grey"


class Embedder:
    """Wraps one ONNX model and its sidecar. Thread-safe: ORT sessions allow concurrent ``run``."""

    def __init__(self, model_path: Path, threads: int = 1, spinning: bool = True) -> None:
        self.path = Path(model_path)
        self.info = ModelInfo.for_model(self.path)
        opts = ort.SessionOptions()
        # Explicit thread counts: ORT's default is the host's core count, which oversubscribes
        # a container limited to fewer CPUs.
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        if not spinning:
            # Idle intra-op threads otherwise busy-wait for the next run, burning the CPU that
            # concurrent requests' SIFT, votes and verification need (the service: 47.6 -> 27.4
            # ms of CPU per stress crop at 2 queries at once, 21 -> 36 crops/s).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    @property
    def dim(self) -> int:
        return self.info.embedding_dim

    @property
    def version(self) -> str:
        return self.info.version

    def embed_array(self, batch: np.ndarray) -> np.ndarray:
        """Embed a preprocessed ``(N, C, S, S)`` batch; rows come back L2-normalised."""
        out = self._session.run([self.info.output_name], {self.info.input_name: batch})[0]
        out = np.asarray(out, dtype=np.float32).reshape(len(batch), -1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        """Preprocess with the sidecar's settings and embed."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_array(batch_inputs(images, self.info))

    def catalog_views(self, grey_views: bool) -> tuple[str, ...]:
        """The views every catalog cover is embedded in: a grey rendition only for an RGB
        model (a grey model already sees every cover in grey) and when ``grey_views``."""
        return (COLOUR_VIEW, GREY_VIEW) if grey_views and self.info.channels == 3 \
            else (COLOUR_VIEW,)

    def embed_views(self, images: list[Image.Image], views: tuple[str, ...]) -> np.ndarray:
        """``(len(views), N, dim)``: the images as they are and/or as their grey renditions,
        in one run of the model."""
        batch = [im if v == COLOUR_VIEW else grey_rendition(im) for v in views for im in images]
        return self.embed_images(batch).reshape(len(views), len(images), self.dim)
