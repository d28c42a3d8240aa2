"""The candidates of `fit` as trials: each runs `compress` in a private folder and returns its numbers and files.

Like a sweep's trials, a candidate is a pure function of (the shared baseline and task, one small description),
so it can run in this process, in a local worker process or on a Ray node without a shared disk: the worker
sends back the candidate's whole run directory as one tar archive, and only the driver writes into `--out`.
A candidate's record (candidates/NN/candidate.json, in the fit's TrialStore) is written after its files, and
counts on `--resume` only if its fingerprint matches this model, task, seed and recipe, its numbers have their
JSON types and its files their recorded sizes, so a restarted driver does not run it again.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgecompress.core.evaluate import score_onnx
from edgecompress.core.progress import labelled
from edgecompress.core.tasks.task import Task
from edgecompress.orchestration.pipeline.stages import StageConfig
from edgecompress.orchestration.trials.store import TrialStore, fingerprint
from edgecompress.runtime.targets import DEFAULT_TARGET
from edgecompress.storage.manifest import STATE_DIR
from edgecompress.storage.rundir import discard

LATENCY_BATCH = 256  # the batch the latency target is about: throughput on the device, timed in ONNX Runtime
RECORD = "candidate.json"


@dataclass(frozen=True)
class FitShared:
    """Sent to each worker once: the trained baseline, the task and how sizes are counted."""

    model: nn.Module
    task: Task
    seed: int
    size_of: str
    target: str = DEFAULT_TARGET  # the CPU class int8 candidates are made exact for


@dataclass(frozen=True)
class FitTrial:
    directory: str  # candidates/NN, relative to --out
    label: str
    stages: tuple[StageConfig, ...]


@dataclass(frozen=True)
class FinishedCandidate:
    """A candidate's numbers (what `fit` chooses by) and, from a worker, its run directory as a tar archive."""

    directory: str
    label: str
    size_bytes: int
    score: float
    drop: float
    latency_ms: float  # median at LATENCY_BATCH, ONNX Runtime, one thread, in the candidate's own run
    latency_ratio: float  # latency_ms / the baseline's, timed interleaved in that run (so comparable across workers)
    selected_on_eval: bool
    archive: bytes = b""

    def record(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "archive"}


def run_fit_trial(shared: FitShared, trial: FitTrial) -> FinishedCandidate:
    """Compress the baseline with the candidate's stages in a temporary folder; measure; archive the folder."""
    from edgecompress.orchestration.pipeline.run import compress

    task = shared.task
    selection = task.scored_on(task.val_loader) if task.val_loader is not None else task
    candidate = f"candidate {trial.directory.rsplit('/', 1)[-1]} ({trial.label})"  # on each of its progress lines
    with tempfile.TemporaryDirectory(prefix="edgecompress-candidate-") as folder, labelled(candidate):
        run = compress(shared.model, task, list(trial.stages), folder, seed=shared.seed, target=shared.target)
        size = run.final.storage_bytes if shared.size_of == "packed" else run.final.artifact_bytes
        if selection is task:
            score, base = run.final.score, run.baseline.score
        else:
            score = score_onnx(Path(folder) / run.final.artifact, selection)
            base = score_onnx(Path(folder) / run.baseline.artifact, selection)
        drop = (base - score) if task.metric.higher_is_better else (score - base)
        latency = run.final.latency[LATENCY_BATCH].median_ms
        ratio = latency / run.baseline.latency[LATENCY_BATCH].median_ms
        return FinishedCandidate(trial.directory, trial.label, size, score, drop, latency, ratio, selection is task, _archive(Path(folder)))


def _archive(folder: Path) -> bytes:
    """The candidate's run directory as a tar archive, without its state folder (lock, manifest)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and relative.parts[0] != STATE_DIR:
                tar.add(path, arcname=str(relative), recursive=False)
    return buffer.getvalue()


CANDIDATE_FIELDS = {"directory": str, "label": str, "size_bytes": int, "score": float, "drop": float,
                    "latency_ms": float, "latency_ratio": float, "selected_on_eval": bool}


class CandidateStore:
    """candidates/NN/ under a fit's output directory: the run's files, then candidate.json, in a TrialStore."""

    def __init__(self, out: Path, base_fingerprint: str):
        self.out = out
        self.store = TrialStore(out, "{key}/" + RECORD)
        self.base_fingerprint = base_fingerprint

    def _fingerprint(self, trial: FitTrial) -> str:
        return fingerprint(self.base_fingerprint, trial.label, [s.model_dump(mode="json") for s in trial.stages])

    def load(self, trial: FitTrial) -> FinishedCandidate | None:
        """The candidate an earlier fit finished, or None: missing, damaged, hand-edited or from other settings."""
        record = self.store.load(trial.directory, self._fingerprint(trial), CANDIDATE_FIELDS)
        if record is None or record["directory"] != trial.directory:
            return None
        return FinishedCandidate(**{name: record[name] for name in CANDIDATE_FIELDS})

    def save(self, trial: FitTrial, finished: FinishedCandidate) -> FinishedCandidate:
        """Write the archive's files into the candidate's folder (each atomically), then the record last."""
        target = self.out / trial.directory
        discard(target)  # an earlier attempt's files: a stale record must not vouch for the new files
        files = {}
        with tarfile.open(fileobj=io.BytesIO(finished.archive), mode="r") as tar:
            for member in tar.getmembers():
                member = tarfile.data_filter(member, str(target))  # our own archive; refuses links and paths outside
                if member.isfile():
                    files[f"{trial.directory}/{member.name}"] = tar.extractfile(member).read()
        self.store.save(trial.directory, self._fingerprint(trial), finished.record(), files=files, indent=2)
        return FinishedCandidate(**finished.record())
