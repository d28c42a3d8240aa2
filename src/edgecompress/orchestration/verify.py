"""`edgecompress verify`: run a finished artifact on CPUs of other classes and compare with this machine.

For each CPU class of the target (a `portable` artifact: every class this machine can reach), the artifact
runs there (on the host when it is of that class, else under qemu-user, `runners.py`); the host then computes
the task metric from those outputs, how far they are from the host's own, and the exactness of every integer
node there (`exactness.py`). Emulated time is not a latency, so nothing is timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgecompress.core.errors import UserError
from edgecompress.runtime.exactness import ExactnessReport, check_exactness
from edgecompress.runtime.runners import run_on_host, runner_for
from edgecompress.runtime.targets import CPU_CLASSES, host_cpu, resolve_target

EXACTNESS_BATCHES = 2  # batches whose every integer node is recomputed (all of its tensors are kept)


@dataclass
class CpuResult:
    """The artifact on one CPU class: its metric there and whether it computed what the host computed."""

    cpu_class: str
    where: str  # "this machine" or the emulator command
    score: float
    max_output_difference: float  # against this machine's outputs on the same inputs
    exactness: ExactnessReport

    def to_json(self) -> dict:
        return {
            "cpu_class": self.cpu_class, "where": self.where, "score": self.score,
            "outputs_equal_host": self.max_output_difference == 0.0,
            "max_output_difference": self.max_output_difference, "exactness": self.exactness.to_json(),
        }


@dataclass
class VerifyReport:
    artifact: Path
    metric: str
    host_class: str
    results: list[CpuResult]
    unreachable: dict[str, str]  # class -> why it could not be run here

    @property
    def consistent(self) -> bool:
        return all(r.exactness.exact and r.max_output_difference == 0.0 for r in self.results)

    def to_json(self) -> dict:
        return {
            "artifact": str(self.artifact), "metric": self.metric, "host": host_cpu().to_json(),
            "consistent": self.consistent, "results": [r.to_json() for r in self.results], "unreachable": self.unreachable,
            "note": "emulated runs are not timed: emulated time is not a latency",
        }


def verify(artifact_dir: str | Path, target: str = "portable", limit: int | None = None, recipe: str | Path | None = None) -> VerifyReport:
    """Run the artifact of a `run`/`demo` output directory, or of an `encoder` output directory, on every CPU
    class of `target` this machine can reach; `limit` caps the evaluation samples (encoders: sentences).

    >>> verify("runs/demo", "x86-avx2").consistent  # doctest: +SKIP
    True
    """
    folder = Path(artifact_dir)
    if not folder.is_dir():
        raise UserError(f"artifact: {folder} is not a directory; give the --out folder of run, demo or encoder")
    if (folder / "artifact" / "encoder.json").is_file():
        model, batches, score = _encoder_inputs(folder, limit or 256)
        metric = "cosine_mean to baseline/model.onnx"
        # every integer node's tensors are kept for the check: a few sentences are plenty of outputs
        checked = [{k: v[:8] for k, v in batch.items()} for batch in batches[:1]]
    elif (folder / "final.onnx").is_file():
        model, batches, score, metric = _run_inputs(folder, limit, recipe)
        checked = batches[:EXACTNESS_BATCHES]
    else:
        raise UserError(f"artifact: {folder} has neither final.onnx (run, demo) nor artifact/encoder.json (encoder)")
    resolved = resolve_target(target)
    classes = CPU_CLASSES if resolved == "portable" else (resolved,)
    host_outputs = run_on_host(model, batches)
    results, unreachable = [], {}
    for cpu_class in classes:
        try:
            runner = runner_for(cpu_class)
        except UserError as exc:
            unreachable[cpu_class] = str(exc).split(": ", 1)[-1]
            continue
        outputs = host_outputs if runner is run_on_host else runner(model, batches)
        difference = max(float(np.abs(h[k] - o[k]).max(initial=0.0)) for h, o in zip(host_outputs, outputs) for k in h)
        where = "this machine" if runner is run_on_host else runner.description
        exactness = check_exactness(model, checked, runner, cpu=f"{cpu_class} ({where})")
        results.append(CpuResult(cpu_class, where, score(outputs), difference, exactness))
    if not results:
        raise UserError(f"--target: no CPU of class {', '.join(classes)} can run here: " + "; ".join(unreachable.values()))
    return VerifyReport(model, metric, host_cpu().cpu_class, results, unreachable)


def _run_inputs(folder: Path, limit: int | None, recipe_path) -> tuple[Path, list, Callable, str]:
    """final.onnx, the task's evaluation batches, and the task metric over the outputs of all of them."""
    from edgecompress.core.tasks.registry import BUILTIN_TASKS, load_task
    from edgecompress.orchestration.recipe.load import load_recipe

    if recipe_path is not None:
        recipe = load_recipe(recipe_path)
    else:
        saved = folder / "recipe.yaml"
        if not saved.is_file():
            raise UserError(f"artifact: {folder} has no recipe.yaml to find its task; pass --recipe")
        recipe = load_recipe(saved)
        if recipe.task not in BUILTIN_TASKS:  # a file we did not write here must not choose code to run
            raise UserError(f"recipe: {saved} names the task {recipe.task!r}, which is code; pass --recipe with your recipe to run it")
    task = load_task(recipe.task, recipe.seed)
    model = folder / "final.onnx"
    import onnx

    name = onnx.load(str(model), load_external_data=False).graph.input[0].name
    batches, targets, seen = [], [], 0
    for inputs, target in task.eval_loader:
        if limit is not None and seen >= limit:
            break
        take = len(inputs) if limit is None else min(len(inputs), limit - seen)
        batches.append({name: inputs[:take].numpy().astype(np.float32)})
        targets.append(target[:take])
        seen += take

    def score(outputs: list[dict]) -> float:
        import torch

        first = next(iter(outputs[0]))
        return float(task.metric(torch.cat([torch.from_numpy(o[first]) for o in outputs]), torch.cat(targets)))

    return model, batches, score, task.metric.name


def _encoder_inputs(folder: Path, sentences: int) -> tuple[Path, list, Callable]:
    """artifact/model.onnx, token batches of held-out sentences, and fidelity to the baseline's embeddings."""
    import torch

    from edgecompress.families.encoder.artifact import OUTPUT_NAME, embed_feeds, open_artifact
    from edgecompress.families.encoder.batches import token_batches
    from edgecompress.families.encoder.corpus import docstring_corpus
    from edgecompress.families.encoder.fidelity import fidelity

    model, max_length, tokenizer = open_artifact(folder / "artifact")
    corpus = docstring_corpus(n_eval=2000, n_train=32, seed=0)
    batches = token_batches(tokenizer, corpus.eval[:sentences], 32, max_length)
    reference = torch.from_numpy(embed_feeds(folder / "baseline.onnx", batches))

    def score(outputs: list[dict]) -> float:
        embeddings = torch.from_numpy(np.concatenate([o[OUTPUT_NAME] for o in outputs]))
        return fidelity(reference, embeddings, queries=min(200, len(embeddings))).cosine_mean

    return model, batches, score
