"""Helpers shared by the tests and the benchmarks (one importable home, no ``sys.path`` edits).

Tiny real ONNX model (``tiny_model``, needs the ``dev`` extra's onnx), procedural covers and
hand-crafted hostile images (``images``, ``hostile``), a real ``cratewatch serve`` subprocess
(``server``). The service itself never imports this package.
"""
