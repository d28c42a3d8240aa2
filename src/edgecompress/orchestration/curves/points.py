"""One point of a curve, measured as files, and the checkpoints that let an interrupted sweep resume.

A trial returns its point together with the bytes of its ONNX and packed files; only the driver writes to the
output directory (workers may be other machines). The record is written last, so a point whose record exists
has its files too, and a record counts only if its fingerprint matches this sweep's model, task and settings.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from edgecompress.core.evaluate import score_onnx
from edgecompress.core.measure.params import count_nonzero_params, count_params
from edgecompress.core.results import SweepPoint
from edgecompress.core.tasks.task import Task
from edgecompress.delivery import pack
from edgecompress.onnx import export_onnx
from edgecompress.orchestration.pipeline.checkpoints import fingerprint
from edgecompress.storage.files import atomic_write_bytes, atomic_write_text
from edgecompress.storage.rundir import mark_reused


@dataclass(frozen=True)
class MeasuredPoint:
    point: SweepPoint
    onnx: bytes
    packed: bytes


def measure_point(model: nn.Module, method: str, level: float, finetuned: bool, task: Task, example) -> MeasuredPoint:
    """Export, pack and score `model` in a private folder; return the point and its files' bytes."""
    with tempfile.TemporaryDirectory(prefix="edgecompress-point-") as folder:
        onnx_path = export_onnx(model, example, Path(folder) / "point.onnx")
        packed = pack(onnx_path, Path(folder) / "point.ecz")
        point = SweepPoint(
            method, level, finetuned, score_onnx(onnx_path, task), count_params(model), count_nonzero_params(model),
            onnx_path.stat().st_size, packed.packed_bytes,
        )
        return MeasuredPoint(point, onnx_path.read_bytes(), Path(folder, "point.ecz").read_bytes())


class PointStore:
    """points/<key>.onnx, .ecz and .json under a sweep's output directory."""

    def __init__(self, folder: Path, base_fingerprint: str):
        self.folder = folder
        self.base_fingerprint = base_fingerprint

    def load(self, key: str) -> SweepPoint | None:
        """The point an earlier sweep finished, or None: missing, damaged or from other settings."""
        files = [self.folder / f"{key}{suffix}" for suffix in (".json", ".onnx", ".ecz")]
        try:
            record = json.loads(files[0].read_text())
            if record.pop("fingerprint", None) != fingerprint(self.base_fingerprint, key) or not all(f.is_file() for f in files):
                return None
            point = SweepPoint(**record)
        except (OSError, ValueError, TypeError, AttributeError):
            return None
        mark_reused(*files)
        return point

    def save(self, measured: MeasuredPoint) -> SweepPoint:
        point = measured.point
        atomic_write_bytes(self.folder / f"{point.key}.onnx", measured.onnx)
        atomic_write_bytes(self.folder / f"{point.key}.ecz", measured.packed)
        record = {"fingerprint": fingerprint(self.base_fingerprint, point.key), **asdict(point)}
        atomic_write_text(self.folder / f"{point.key}.json", json.dumps(record))
        return point
