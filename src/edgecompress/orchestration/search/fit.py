"""Target-driven mode: find the smallest model that fits a size and/or latency budget and loses at most a given amount.

No library searches compression recipes against size, latency and accuracy targets, so this is ours: a
short list of candidate recipes, from mild to aggressive, each run with `compress` into its own directory;
the smallest candidate within every given target wins, and the Pareto front of size vs metric is reported.
When none meets the targets, the best found is returned with a plain message, never nothing: the budgets
(size, latency) come first, so it is the most accurate candidate within them, else the one closest to them.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from edgecompress.core.seeding import check_seed
from edgecompress.core.tasks.task import Task
from edgecompress.orchestration.executors import Executor, make_executor
from edgecompress.orchestration.pipeline.checks import check_stages, validate_recipe
from edgecompress.orchestration.pipeline.stages import Finetune, Prune, Qat, Quantize, StageConfig
from edgecompress.orchestration.search.fit_trials import CandidateStore, FitShared, FitTrial, run_fit_trial
from edgecompress.orchestration.search.pareto import Candidate, FitResult, choose
from edgecompress.orchestration.search.pareto_plot import plot_pareto
from edgecompress.orchestration.search.targets import Targets, check_targets, parse_latency
from edgecompress.orchestration.trials.runner import open_trials
from edgecompress.orchestration.trials.store import fingerprint, model_fingerprint
from edgecompress.runtime.targets import DEFAULT_TARGET, check_target
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir

__all__ = ["Candidate", "FitResult", "Targets", "check_targets", "choose", "default_candidates", "fit", "parse_latency"]


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

        def finish(trial: FitTrial, finished) -> list[str]:
            done[trial.directory] = store.save(trial, finished)
            return [f"{trial.label}: {finished.size_bytes:,} B, drop {finished.drop:+.2f}"]

        shared = FitShared(model, task, seed, size_of, check_target(target))
        with open_trials(chosen_executor, shared, "fit", total=len(trials), completed=len(done)) as runner:
            runner.run(run_fit_trial, missing, finish)
        results = [
            Candidate(f.label, f.directory, f.size_bytes, f.score, f.drop, f.latency_ms, f.latency_ratio)
            for f in (done[t.directory] for t in trials)
        ]
        result = choose(results, targets, selected_on_eval=done[trials[0].directory].selected_on_eval)
        _write(out, result)
        plot_pareto(out / "pareto.png", result, task.metric.name)
    return result


def _write(out: Path, result: FitResult) -> None:
    doc = {
        "targets": result.targets.to_json(),
        "met_targets": result.met_targets,
        "message": result.message,
        "chosen": result.chosen.to_json(),
        "pareto": result.pareto,
        "candidates": [c.to_json() for c in result.candidates],
    }
    atomic_write_text(out / "fit.json", json.dumps(doc, indent=2) + "\n")
