"""Issue 11 defect 12: FAISS runs one OpenMP thread in the threads that serve requests.

OpenMP's thread count is per thread: setting it in the loader thread leaves request threads at
the process default. The app runs in a subprocess with ``OMP_NUM_THREADS=3`` so the default is
known (not this machine's core count), and the count is read inside the request's own FAISS
calls: both indexes of the catalog's ``AlbumIndex`` and the verifier's ``faiss.knn``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
from pathlib import Path

import faiss
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.config import Settings

catalog, model, data = (Path(a) for a in sys.argv[1:4])
seen = []
with TestClient(create_app(Settings(catalog=catalog, model=model, data=data, threads=1))) as c:
    while c.get("/readyz").status_code != 200:
        pass
    # Wrap the real FAISS calls a request makes: the catalog's embedding index, its
    # local-feature descriptor index and the verifier's faiss.knn. The count is read in the
    # calling thread itself. A catalog cover is verified by the first look (no votes); a
    # noise image passes the first look without a strong candidate, so its votes search the
    # descriptor index (the tiny model's gate is closed).
    # The descriptor index is wrapped at ``_search_rows``, the call every vote search makes,
    # also the half a query running alone hands to the idle thread (PARALLEL_ALONE).
    catalog_index = c.app.state.engine.catalog
    for index, method in ((catalog_index.vectors, "search"),
                          (catalog_index.descriptors, "_search_rows")):
        def search(*args, _real=getattr(index, method), _name=type(index).__name__, **kwargs):
            seen.append(f"{_name}={faiss.omp_get_max_threads()}")
            return _real(*args, **kwargs)

        setattr(index, method, search)

    def knn(*args, _real=faiss.knn, **kwargs):
        seen.append(f"knn={faiss.omp_get_max_threads()}")
        return _real(*args, **kwargs)

    faiss.knn = knn
    cover = (catalog / "images" / "alb-001.png").read_bytes()
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (160, 160, 3), np.uint8))
    noise.save(data.parent / "noise.png")
    for image in (cover, (data.parent / "noise.png").read_bytes()) * 2:
        assert c.post("/identify", files={"image": ("c.png", image)}).status_code == 200
print("DEFAULT", faiss.omp_get_max_threads(), "SEEN", *seen)
"""


def test_faiss_uses_one_thread_in_request_threads(catalog_dir: Path, tiny_model: Path,
                                                  tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "3"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(catalog_dir), str(tiny_model),
                          str(tmp_path / "data")], capture_output=True, text=True, env=env,
                         timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-3000:]
    words = out.stdout.split()
    default = int(words[words.index("DEFAULT") + 1])
    seen = words[words.index("SEEN") + 1 :]
    assert default == 3  # the environment really sets the process default here
    # Both indexes were searched and candidates verified, every time with one OpenMP thread.
    assert set(seen) == {"VectorIndex=1", "DescriptorIndex=1", "knn=1"}, \
        f"FAISS threads seen: {seen}"
