"""Target-driven mode: find the smallest model that fits a size and/or latency budget and loses at most a given amount.

No library searches compression recipes against size, latency and accuracy targets, so this is ours: a
short list of candidate recipes, from mild to aggressive, each run with `compress` into its own directory;
the smallest candidate within every given target wins, and the Pareto front of size vs metric is reported.
When none meets the targets, the best found is returned with a plain message, never nothing: the budgets
(size, latency) come first, so it is the most accurate candidate within them, else the one closest to them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.ticker
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.progress import progress_bar
from edgecompress.core.seeding import check_seed
from edgecompress.core.tasks.task import Task
from edgecompress.orchestration.executors import Executor, make_executor
from edgecompress.orchestration.pipeline.checkpoints import fingerprint, model_fingerprint
from edgecompress.orchestration.pipeline.run import check_stages, validate_recipe
from edgecompress.orchestration.pipeline.stages import Finetune, Prune, Qat, Quantize, StageConfig
from edgecompress.orchestration.search.fit_trials import LATENCY_BATCH, CandidateStore, FitShared, FitTrial, run_fit_trial
from edgecompress.reporting.plotting.canvas import figure
from edgecompress.runtime.targets import DEFAULT_TARGET, check_target
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir


def default_candidates() -> list[tuple[str, list[StageConfig]]]:
    """Candidate recipes, mildest first (each removes more than the one before, roughly)."""
    channels = [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5)]
    sparse = lambda amount: Prune(  # noqa: E731
        pattern="unstructured", criterion="l1", scope="global", amount=amount, schedule="gradual",
        steps=10, epochs=24, lr=2e-3, distill=0.5, keep_classifier=False,
    )
    return [
        ("int8", [Quantize()]),
        ("channels-50%, int8", [*channels, Quantize()]),
        ("channels-75%, int8", [Prune(pattern="channel", amount=0.75), Finetune(epochs=32, lr=2e-3, distill=0.5), Quantize()]),
        ("channels-50%, sparse-80%, int8", [*channels, sparse(0.8), Quantize()]),
        ("channels-50%, ternary QAT, int8", [*channels, Qat(bits="ternary"), Quantize()]),
        ("channels-50%, sparse-90%, int8", [*channels, sparse(0.9), Quantize()]),
    ]


_LATENCY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(x|ms|us)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Targets:
    """What a fitted model must meet; None means no limit. A latency limit is a ratio to the baseline's
    batch-256 latency in the same run (`latency_ratio`, e.g. 0.5) or absolute milliseconds (`latency_ms`)."""

    max_bytes: int | None = None
    max_drop: float | None = None
    latency_ratio: float | None = None
    latency_ms: float | None = None
    size_of: str = "packed"

    def missed(self, c: "Candidate") -> list[str]:
        """The targets `c` misses, by name: size, latency, drop."""
        over = {
            "size": self.max_bytes is not None and c.size_bytes > self.max_bytes,
            "latency": (self.latency_ratio is not None and c.latency_ratio > self.latency_ratio)
            or (self.latency_ms is not None and c.latency_ms > self.latency_ms),
            "drop": self.max_drop is not None and c.drop > self.max_drop,
        }
        return [name for name, missed in over.items() if missed]

    def overshoot(self, c: "Candidate") -> float:
        """How far `c` is from the budgets: the largest of value / limit over the size and latency targets."""
        ratios = [1.0]
        if self.max_bytes is not None:
            ratios.append(c.size_bytes / self.max_bytes)
        if self.latency_ratio is not None:
            ratios.append(c.latency_ratio / self.latency_ratio)
        if self.latency_ms is not None:
            ratios.append(c.latency_ms / self.latency_ms)
        return max(ratios)

    def describe(self) -> str:
        parts = []
        if self.max_bytes is not None:
            parts.append(f"size <= {self.max_bytes:,} B ({self.size_of})")
        if self.latency_ratio is not None:
            parts.append(f"latency <= {self.latency_ratio:g}x the baseline's at batch {LATENCY_BATCH}")
        if self.latency_ms is not None:
            parts.append(f"latency <= {self.latency_ms:g} ms at batch {LATENCY_BATCH}")
        if self.max_drop is not None:
            parts.append(f"drop <= {self.max_drop:g}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return dict(self.__dict__, latency_batch=LATENCY_BATCH)


def parse_latency(text: str | float) -> tuple[float | None, float | None]:
    """`--max-latency`: '0.5' or '0.5x' is a ratio to the baseline; '0.3ms' or '300us' is absolute.

    Returns (ratio, milliseconds), one of them None.

    >>> parse_latency("0.5"), parse_latency("300us")
    ((0.5, None), (None, 0.3))
    """
    match = _LATENCY.match(str(text))
    if not match or not 0 < float(match.group(1)) < math.inf:
        shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "..."
        raise UserError(
            f"--max-latency: cannot use {shown!r}; give a positive ratio to the baseline's batch-{LATENCY_BATCH} "
            "latency (0.5 or 0.5x) or an absolute time (0.3ms, 300us)"
        )
    value, unit = float(match.group(1)), (match.group(2) or "x").lower()
    if unit == "x":
        return value, None
    return None, value / 1000 if unit == "us" else value


def check_targets(
    max_drop: float | None, size_of: str, max_bytes: int | None = None, max_latency: str | float | None = None
) -> Targets:
    """Validate the targets up front (the CLI calls this before it spends a minute training).

    A size or latency budget is required: fitting means fitting into something; --max-drop bounds the loss.
    """
    if size_of not in ("packed", "onnx"):
        raise UserError(f"--size-of: must be packed or onnx, got {size_of!r}")
    if max_drop is not None and not 0 <= max_drop < math.inf:
        raise UserError(f"--max-drop: must be >= 0 and finite, got {max_drop}")
    if max_bytes is None and max_latency is None:
        raise UserError("Missing option '--max-size' or '--max-latency': give a budget to fit into, e.g. --max-size 10KB or --max-latency 0.5")
    if max_bytes is not None and max_bytes <= 0:
        raise UserError(f"--max-size: must be positive, got {max_bytes}")
    ratio, ms = parse_latency(max_latency) if max_latency is not None else (None, None)
    return Targets(max_bytes, max_drop, ratio, ms, size_of)


@dataclass
class Candidate:
    label: str
    directory: str
    size_bytes: int
    score: float
    drop: float
    latency_ms: float = float("nan")  # median at batch LATENCY_BATCH, ONNX Runtime, one thread
    latency_ratio: float = float("nan")  # latency_ms / the baseline's, timed interleaved in the same run
    fits: bool = False

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class FitResult:
    chosen: Candidate
    met_targets: bool
    message: str
    candidates: list[Candidate] = field(default_factory=list)
    pareto: list[str] = field(default_factory=list)
    targets: Targets | None = None


def fit(
    model: nn.Module,
    task: Task,
    out_dir: str | Path,
    max_bytes: int | None = None,
    max_drop: float | None = None,
    size_of: str = "packed",
    seed: int = 0,
    candidates: list[tuple[str, list[StageConfig]]] | None = None,
    max_latency: str | float | None = None,
    jobs: int = 1,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    resume: bool = False,
    target: str = DEFAULT_TARGET,
    force: bool = False,
) -> FitResult:
    """Run the candidates and choose. Scores for choosing come from `task.val_loader` when given; without one
    they come from the evaluation set, and the report says that the chosen model's numbers are optimistic.
    `max_latency` is a ratio to the baseline's batch-256 latency (0.5, "0.5x") or absolute ("0.3ms").

    Candidates run one after another, in `jobs` local worker processes, or on Ray (`executor="ray"`), with
    the same sizes and scores; each is saved in candidates/NN as it finishes, and with `resume` a rerun on the
    same directory skips the candidates already finished with the same model, task, seed and recipe. A
    directory holding an earlier fit is refused unless `resume` or `force` (replace it).

    >>> fit(model, task, "runs/fit", max_bytes=10_000, max_drop=1.0).chosen.label  # doctest: +SKIP
    >>> fit(model, task, "runs/fit", max_latency=0.5, executor="ray", resume=True).chosen  # doctest: +SKIP
    """
    targets = check_targets(max_drop, size_of, max_bytes, max_latency)
    check_seed(seed)
    candidates = candidates or default_candidates()
    for label, stages in candidates:
        validate_recipe(stages)
        check_stages(model, stages, has_data=task.train_loader is not None)
    chosen_executor = make_executor(executor, jobs, ray_address)
    trials = [FitTrial(f"candidates/{i:02d}", label, tuple(stages)) for i, (label, stages) in enumerate(candidates, start=1)]
    with owned_run_dir(out_dir, "fit", resume=resume, force=force) as out:
        store = CandidateStore(out, fingerprint("fit", task.name, seed, size_of, model_fingerprint(model), target))
        done = {t.directory: found for t in trials if resume and (found := store.load(t)) is not None}
        missing = [t for t in trials if t.directory not in done]
        with progress_bar() as bar, chosen_executor.open(FitShared(model, task, seed, size_of, check_target(target))) as runner:
            progress = bar.add_task("fit", total=len(trials), completed=len(done), status="")
            for trial, finished in runner.run(run_fit_trial, missing):
                done[trial.directory] = store.save(trial, finished)
                bar.update(progress, advance=1, status=f"{trial.label}: {finished.size_bytes:,} B, drop {finished.drop:+.2f}")
        results = [
            Candidate(f.label, f.directory, f.size_bytes, f.score, f.drop, f.latency_ms, f.latency_ratio)
            for f in (done[t.directory] for t in trials)
        ]
        result = choose(results, targets, selected_on_eval=done[trials[0].directory].selected_on_eval)
        _write(out, result, task)
    return result


def choose(results: list[Candidate], targets: Targets, selected_on_eval: bool) -> FitResult:
    """The smallest candidate that meets every target; else the best found, and a message that says so."""
    pareto = [c for c in results if not any(o.size_bytes <= c.size_bytes and o.drop < c.drop or o.size_bytes < c.size_bytes and o.drop <= c.drop for o in results)]
    for c in results:
        c.fits = not targets.missed(c)
    fitting = [c for c in results if c.fits]
    caveat = " (chosen on the evaluation set: no validation data was given, so its numbers are optimistic)" if selected_on_eval else ""
    if fitting:
        chosen = min(fitting, key=lambda c: (c.size_bytes, c.drop))
        message = f"{chosen.label}: {_numbers(chosen, targets)} meets every target ({targets.describe()}){caveat}"
        return FitResult(chosen, True, message, results, [c.label for c in pareto], targets)
    within_budget = [c for c in results if not {"size", "latency"} & set(targets.missed(c))]
    if within_budget:
        chosen = min(within_budget, key=lambda c: (c.drop, c.size_bytes))
        why = "is within the size/latency budget but loses more"
    else:
        chosen = min(results, key=lambda c: (targets.overshoot(c), c.drop))
        why = f"is the closest found to the budget and still misses {' and '.join(targets.missed(chosen))}"
    message = f"no candidate meets {targets.describe()}; best found: {chosen.label} ({_numbers(chosen, targets)}), which {why}{caveat}"
    return FitResult(chosen, False, message, results, [c.label for c in pareto], targets)


def _numbers(c: Candidate, targets: Targets) -> str:
    return (
        f"{c.size_bytes:,} B ({targets.size_of}), latency {c.latency_ratio:.2f}x the baseline's "
        f"({c.latency_ms:.3f} ms at batch {LATENCY_BATCH}), drop {c.drop:+.2f}"
    )


def _write(out: Path, result: FitResult, task) -> None:
    targets = result.targets
    doc = {
        "targets": targets.to_json(),
        "met_targets": result.met_targets,
        "message": result.message,
        "chosen": result.chosen.to_json(),
        "pareto": result.pareto,
        "candidates": [c.to_json() for c in result.candidates],
    }
    atomic_write_text(out / "fit.json", json.dumps(doc, indent=2) + "\n")
    with figure(out / "pareto.png", width=6.5, height=4.0) as (fig, (ax,)):
        for number, c in enumerate(result.candidates, start=1):
            marker = "*" if c is result.chosen else ("o" if c.label in result.pareto else "x")
            label = f"{number}. {c.label} ({c.latency_ratio:.2f}x latency)"
            ax.scatter(c.size_bytes / 1000, -c.drop, marker=marker, s=140 if marker == "*" else 40, label=label)
            ax.annotate(str(number), (c.size_bytes / 1000, -c.drop), fontsize=8, xytext=(4, 4), textcoords="offset points")
        if targets.max_bytes is not None:
            ax.axvline(targets.max_bytes / 1000, color="#d62728", linestyle="--", linewidth=1, label="max size")
        if targets.max_drop is not None:
            ax.axhline(-targets.max_drop, color="#ff7f0e", linestyle="--", linewidth=1, label="max drop")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel(f"{targets.size_of} size (KB)")
        ax.set_ylabel(f"{task.metric.name} change vs baseline")
        ax.set_title("candidates (o: Pareto front, *: chosen)")
        ax.legend(fontsize=7, loc="lower right")
