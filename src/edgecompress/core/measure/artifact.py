"""Size of an artifact on disk, external data included."""

from __future__ import annotations

from pathlib import Path

import onnx


def artifact_bytes(path: str | Path) -> int:
    """Bytes on disk of an ONNX file plus every external-data file it references."""
    path = Path(path)
    total = path.stat().st_size
    if path.suffix == ".onnx":
        model = onnx.load(str(path), load_external_data=False)
        locations = {
            entry.value
            for tensor in _all_initializers(model.graph)
            for entry in tensor.external_data
            if entry.key == "location"
        }
        total += sum((path.parent / loc).stat().st_size for loc in locations)
    return total


def _all_initializers(graph):
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _all_initializers(attr.g)
