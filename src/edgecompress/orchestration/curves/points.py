"""One point of a curve, measured as files, and its record in the sweep's TrialStore (points/<key>.json).

A trial returns its point together with the bytes of its ONNX and packed files; only the driver writes to the
output directory (workers may be other machines). The store writes the files first and the record last, so a
point whose record exists has its files too, and a record counts only if its fingerprint matches this sweep's
model, task and settings, its fields have their JSON types and its files their recorded sizes.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from edgecompress.core.evaluate import score_onnx
from edgecompress.core.measure.params import count_nonzero_params, count_params
from edgecompress.core.results import SweepPoint
from edgecompress.core.tasks.task import Task
from edgecompress.delivery import pack
from edgecompress.onnx import export_model
from edgecompress.orchestration.trials.store import TrialStore, fingerprint


@dataclass(frozen=True)
class MeasuredPoint:
    point: SweepPoint
    onnx: bytes
    packed: bytes


def measure_point(model: nn.Module, method: str, level: float, finetuned: bool, task: Task, example) -> MeasuredPoint:
    """Export, pack and score `model` in a private folder; return the point and its files' bytes."""
    with tempfile.TemporaryDirectory(prefix="edgecompress-point-") as folder:
        onnx_path = export_model(model, example, Path(folder) / "point.onnx", task)
        packed = pack(onnx_path, Path(folder) / "point.ecz")
        point = SweepPoint(
            method, level, finetuned, score_onnx(onnx_path, task), count_params(model), count_nonzero_params(model),
            onnx_path.stat().st_size, packed.packed_bytes,
        )
        return MeasuredPoint(point, onnx_path.read_bytes(), Path(folder, "point.ecz").read_bytes())


POINT_FIELDS = {"method": str, "level": float, "finetuned": bool, "score": float, "params": int,
                "nonzero_params": int, "artifact_bytes": int, "storage_bytes": int}


class PointStore:
    """points/<key>.onnx, .ecz and .json under a sweep's output directory, kept by a TrialStore."""

    def __init__(self, out: Path, base_fingerprint: str):
        self.folder = out / "points"
        self.store = TrialStore(out, "points/{key}.json")
        self.base_fingerprint = base_fingerprint

    def load(self, key: str) -> SweepPoint | None:
        """The point an earlier sweep finished, or None: missing, damaged, hand-edited or from other settings."""
        needs = [f"points/{key}.onnx", f"points/{key}.ecz"]
        record = self.store.load(key, fingerprint(self.base_fingerprint, key), POINT_FIELDS, needs=needs)
        if record is None:
            return None
        point = SweepPoint(**{name: record[name] for name in POINT_FIELDS})
        return point if point.key == key else None

    def save(self, measured: MeasuredPoint) -> SweepPoint:
        point = measured.point
        files = {f"points/{point.key}.onnx": measured.onnx, f"points/{point.key}.ecz": measured.packed}
        self.store.save(point.key, fingerprint(self.base_fingerprint, point.key), asdict(point), files=files)
        return point
