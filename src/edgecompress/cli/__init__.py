"""The command line: parse, validate, call the Python API, print. No logic of its own."""

from __future__ import annotations

import contextlib
import json
import math
import shlex
import sys
import traceback
import warnings
from pathlib import Path
from typing import Optional

import pydantic
import typer
from rich.console import Console

from edgecompress.core.errors import RunFailure, UserError
from edgecompress.runtime.targets import check_target

app = typer.Typer(
    name="edgecompress",
    help="Make PyTorch models small and fast enough for edge devices, with honest measurements.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish and PowerShell
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
_options = {"debug": False}
console = Console(soft_wrap=True)  # results go to stdout, whole lines (the terminal wraps them); progress and logs go to stderr
MAX_SEED = 2**32 - 1  # as edgecompress.core.seeding.MAX_SEED (imported lazily: help needs no torch)

_RESUME_RUN_HELP = "Continue the run in --out (killed or finished): reuse its trained baseline and finished stages; the result is the same as an uninterrupted run."
_FORCE_HELP = "Replace the earlier edgecompress output in --out (its files are deleted first), or write into a directory holding other files (only files of the same names are replaced)."
_FORCE_FILE_HELP = "Replace the output file if it already exists."

_TRUST_CODE_HELP = ("Allow a .safetensors file's metadata (edgecompress.arch) to name its architecture as module:function "
                    "or file.py:function: edgecompress then imports and runs that Python code. Without it only built-in "
                    "architectures load from metadata. Only for files you trust as you trust code you run.")


def _show_version(value: bool) -> None:
    if value:
        from edgecompress import __version__

        typer.echo(f"edgecompress {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
) -> None:
    _options["debug"] = debug


def _no_type_after_flags() -> None:
    """Recent typer's rich help prints every option's type, so each flag reads `--force <bool>` though it takes
    no value (click's plain help never does): show nothing there for flags."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_untyped", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.flags_untyped = True
    TyperOption.display_type_rich = display_type_rich


_no_type_after_flags()
_QUIET_HELP = "Print only the final summary and errors: no progress lines, bars or warnings on stderr."
_VERBOSE_HELP = ("Also show the libraries' own logs and warnings that are silenced otherwise (ONNX Runtime, the ONNX "
                 "exporter, Torch-Pruning, torch) and a detail line per stage (sizes, MACs, time, settings); on stderr.")
_JSON_HELP = "Print the result as one JSON document on stdout instead of the table (progress still goes to stderr)."


@contextlib.contextmanager
def _output(quiet: bool, verbose: bool = False):
    """With `quiet`, progress (core.progress's stderr console) and Python warnings are silenced for the command;
    with `verbose`, the libraries' logs are not, and each stage adds a detail line (core/verbosity.py)."""
    if quiet and verbose:
        raise UserError("--quiet and --verbose: give one of them")
    if verbose:
        from edgecompress.core.verbosity import verbose as verbose_output

        with verbose_output():
            yield
        return
    if not quiet:
        yield
        return
    from edgecompress.core.progress import console as progress_console

    was = progress_console.quiet
    progress_console.quiet = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        progress_console.quiet = was


def _print_json(document: dict) -> None:
    """`document` on stdout as standard JSON: NaN and infinities (a latency not measured) become null."""

    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    typer.echo(json.dumps(finite(document), indent=2, allow_nan=False))


_TARGET_HELP = (
    "CPU class the int8 artifact must compute exactly on: portable (every class), auto (this machine), "
    "x86-avx2 (x86 without VNNI), x86-vnni, arm64 [default: the recipe's, else portable]."
)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Directory for artifacts, metrics.json and the report."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Random seed; the same seed gives the same models and scores."),
    target: str = typer.Option("portable", "--target", help=_TARGET_HELP),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_RUN_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=_VERBOSE_HELP),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Train the digits CNN, prune 50% of its channels, fine-tune, train ternary weights, quantize to int8, and
    measure it all in ONNX Runtime.

    Writes baseline.onnx and final.onnx (and their packed .ecz files), stages/, model.safetensors,
    metrics.json, report.html, PNG plots and checkpoints/ to --out. Same as: run examples/digits.yaml.
    A directory holding an earlier run is refused unless --resume or --force.
    """
    from edgecompress.orchestration.demo import run_demo

    with _output(quiet, verbose):
        result = run_demo(out, seed=seed, target=check_target(target), resume=resume, force=force)
    _print_run_summary(result, "demo", as_json)


@app.command("run")
def run_command(
    recipe: Path = typer.Argument(..., help="YAML recipe: model, task, optional training, and the ordered stages."),
    out: Path = typer.Option(Path("runs/recipe"), "--out", help="Directory for artifacts, metrics.json and the report."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=MAX_SEED, help="Override the recipe's seed."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a whole saved model file named in the recipe."),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_RUN_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    target: Optional[str] = typer.Option(None, "--target", help=_TARGET_HELP),
    trust_code: bool = typer.Option(False, "--trust-code", help=_TRUST_CODE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=_VERBOSE_HELP),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Run a compression recipe (see examples/*.yaml). The whole recipe is validated before anything runs.

    Each finished stage is checkpointed in --out/checkpoints; after a crash or kill, --resume continues
    from the last finished stage and ends with the same result as an uninterrupted run. A directory holding
    an earlier run is refused unless --resume or --force; files edgecompress did not write are never deleted.
    """
    from edgecompress.orchestration.recipe import run_recipe
    from edgecompress.orchestration.recipe.check import check_recipe
    from edgecompress.storage.paths import check_output_dir

    check_output_dir(out)
    with _output(quiet, verbose):
        checked = check_recipe(recipe, seed=seed, target=check_target(target) if target else None, trust_pickle=trust_pickle, trust_code=trust_code)
        result = run_recipe(checked.recipe, out, trust_pickle=trust_pickle, resume=resume, force=force, trust_code=trust_code,
                            resolved=(checked.loaded, checked.task))
    _print_run_summary(result, "run", as_json)


@app.command("validate")
def validate_command(
    recipe: Path = typer.Argument(..., help="YAML recipe to check."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a whole saved model file named in the recipe."),
    trust_code: bool = typer.Option(False, "--trust-code", help=_TRUST_CODE_HELP),
) -> None:
    """Check a recipe without running it: every problem at once, the same errors `run` gives; exit 2 if any.

    Checks the fields (suggesting the right name for a misspelt one), the stage order, the files it names (relative to the recipe's folder), then loads the model, its weights and the task (importing and calling the code the recipe names, as run does), runs one batch of the task's data through the model and checks each stage's settings against the model's layers. Nothing is trained, exported or written.
    """
    from edgecompress.orchestration.recipe.check import check_recipe

    checked = check_recipe(recipe, trust_pickle=trust_pickle, trust_code=trust_code)
    stages = ", ".join(stage.stage for stage in checked.recipe.stages)
    _print_line(f"{recipe}: valid: {checked.loaded.source} on {checked.task_name}, {len(checked.recipe.stages)} stage(s): {stages}")


def _print_run_summary(result, command: str = "run", as_json: bool = False) -> None:
    """The summary table (whole values at any width: reporting/terminal.py) and where the files are; or, with
    `as_json`, metrics.json's document (the file the run wrote) with the paths and the noise note."""
    from edgecompress.reporting.summary import latency_note, left_as_is_lines, run_summary_grid
    from edgecompress.reporting.terminal import print_grid

    note = latency_note(result)
    if as_json:
        metrics = result.out_dir / "metrics.json"
        _print_json({"command": command, "out": str(result.out_dir), "report": str(result.out_dir / "report.html"),
                     "metrics_file": str(metrics), "latency_note": note, "metrics": json.loads(metrics.read_text(encoding="utf-8"))})
        return
    print_grid(console, run_summary_grid(result))
    for line in left_as_is_lines(result):
        _print_line(line)
    if note:
        _print_line(note)
    _print_line(f"report: {result.out_dir / 'report.html'}   metrics: {result.out_dir / 'metrics.json'}")


def _print_line(text: str) -> None:
    """One whole line on stdout: the terminal wraps it, a log keeps it; never cut, padded or read as markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


@app.command("inspect")
def inspect_command(
    model: str = typer.Argument(..., help="Built-in name (digits-cnn, digits-mlp), module:function, or a saved model file."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Example input shape with batch axis, e.g. 1,1,8,8 (built-ins have a default)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="State dict (.safetensors, or .pt loaded with weights_only) to load into MODEL."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a whole saved module; only for files you trust (it can run code)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="The architecture to load a saved weights file MODEL into: a built-in name or module:function (which is imported and run). Overrides the file's own edgecompress.arch metadata."),
    trust_code: bool = typer.Option(False, "--trust-code", help=_TRUST_CODE_HELP),
    target_size: Optional[str] = typer.Option(None, "--target-size", help="Say which layers must shrink to fit this size, with its unit: e.g. 50KB or 48KiB (a bare number is refused)."),
    out: Path = typer.Option(Path("runs/inspect"), "--out", help="Directory for layers.png and layers.json (an earlier inspect's are replaced)."),
    force: bool = typer.Option(False, "--force", help="Write into --out even if it holds other files or another command's output (files of the same names are replaced)."),
) -> None:
    """Per-layer table (params, bytes, MACs, sparsity, dtype), bar charts, saved-size check and target-size advice."""
    from edgecompress.core.models import load_model
    from edgecompress.core.sizes import parse_size
    from edgecompress.inspect import advise_target_size, check_saved_size, layer_table
    from edgecompress.inspect.render import advice_lines, layers_grid, layers_json, saved_size_line
    from edgecompress.reporting.plotting.layer_charts import plot_layers
    from edgecompress.reporting.terminal import print_grid
    from edgecompress.storage.files import atomic_write_text
    from edgecompress.storage.paths import check_output_dir
    from edgecompress.storage.rundir import owned_run_dir

    target = parse_size(target_size, field="--target-size") if target_size is not None else None
    shape = parse_shape(input_shape) if input_shape is not None else None
    check_output_dir(out)
    loaded = load_model(model, weights=str(weights) if weights else None, trust_pickle=trust_pickle, arch=arch, trust_code=trust_code)
    shape = shape or loaded.default_input_shape
    if shape is None:
        raise UserError(f"--input-shape: required for {model}; give the example input shape, e.g. 1,3,32,32")
    table = layer_table(loaded.module, shape)
    advice = advise_target_size(table, target, model=loaded.module) if target is not None else None
    fit = _fit_command(target_size, model, weights, arch) if target is not None else None
    saved = check_saved_size(loaded.module, loaded.saved_file)

    with owned_run_dir(out, "inspect", force=force) as owned:
        chart = plot_layers({loaded.source: table}, owned / "layers.png", title=loaded.source)
        atomic_write_text(owned / "layers.json", json.dumps(layers_json(table, saved, advice, fit), indent=2) + "\n")

    print_grid(console, layers_grid(table, title=f"{loaded.source}, input {'x'.join(map(str, shape))}"))
    _print_line(saved_size_line(saved))
    for line in advice_lines(advice, fit) if advice else []:
        _print_line(line)
    _print_line(f"charts: {chart}   table: {out / 'layers.json'}")


def _fit_command(target_size: str, model: str, weights: Path | None, arch: str | None) -> str:
    """The `fit` command that builds and measures what `inspect --target-size` estimates: as is for the digits
    CNN (fit's own model without --recipe), else with a recipe naming the model."""
    budget = f"--max-size {shlex.quote(target_size.strip())} --size-of onnx"
    if model == "digits-cnn" and weights is None and arch is None:
        return f"edgecompress fit {budget}"
    named = f"model: {model}" + (f", weights: {weights}" if weights is not None else "") + (f" (arch {arch})" if arch else "")
    return f"edgecompress fit --recipe RECIPE.yaml {budget}   (RECIPE.yaml: a recipe with {named} and its task)"


_JOBS_HELP = "Run this many trials at once in local worker processes (one torch thread each) [default: the recipe's execution.jobs, else 1]."
_RECIPE_HELP = "Take the model, weights, task, training, seed and execution settings from this recipe instead of the demo's digits CNN."
_SEED_HELP = "Random seed [default: the recipe's, else 0]."
_EXECUTOR_HELP = "Where trials run: local (this machine, --jobs processes) or ray (a Ray cluster; pip install 'edgecompress\\[ray]') [default: the recipe's execution.executor, else local]."  # \\[: not Rich markup
_RAY_ADDRESS_HELP = "Ray cluster to use with --executor ray, e.g. ray://head:10001 or auto (default: start a local Ray instance)."


@app.command("sweep")
def sweep_command(
    levels: str = typer.Option("0.5,0.7,0.8,0.9,0.95", "--levels", help="Comma-separated sparsity levels in (0, 1)."),
    methods: str = typer.Option("unstructured,channel", "--methods", help="Comma-separated: unstructured, channel, channel8 (channel counts rounded down to multiples of 8), random, lowrank (level = fraction of the conv/Linear parameters removed by factorization)."),
    finetune_epochs: int = typer.Option(4, "--finetune-epochs", min=1, help="Fine-tuning epochs per point (with distillation)."),
    tolerance: float = typer.Option(0.5, "--tolerance", min=0.0, help="Largest metric drop a sweet spot may have."),
    out: Path = typer.Option(Path("runs/sweep"), "--out", help="Directory for sweep.json, sweep.csv, latency.csv, sweep.png and points/."),
    dense_baseline: bool = typer.Option(True, "--dense-baseline/--no-dense-baseline", help="Also train from scratch smaller dense models with the pruned models' parameter counts (and, for your own model, each channel-pruned architecture)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=MAX_SEED, help=_SEED_HELP),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help=_JOBS_HELP),
    executor: Optional[str] = typer.Option(None, "--executor", help=_EXECUTOR_HELP),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help=_RAY_ADDRESS_HELP),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help=_RECIPE_HELP),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="With --recipe: allow unpickling a whole saved model file it names."),
    trust_code: bool = typer.Option(False, "--trust-code", help="With --recipe: " + _TRUST_CODE_HELP),
    latency_batch: int = typer.Option(256, "--latency-batch", min=1, help="Batch size at which every point's ONNX file is timed (ONNX Runtime, 1 thread, after the trials)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the sweep in --out (interrupted or finished): keep the trained baseline and the points it measured with the same model and settings."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Sparsity-vs-accuracy curves of the demo's digits CNN (or a recipe's model), with and without fine-tuning,
    each method's sweet spot, and smaller dense models of the same parameter counts trained from scratch (does
    pruning win? a recipe's model is thinned uniformly; its channel-pruned architectures are trained from scratch too).

    Every point is exported and scored in ONNX Runtime; finished points are kept in --out/points, so an
    interrupted sweep continued with --resume recomputes only what is missing (without --resume or --force, a
    directory holding an earlier sweep is refused). Points run in parallel with --jobs N
    (local worker processes) or on a Ray cluster with --executor ray; the table is the same either way.
    Latency (latency.csv, third panel of the plot) is timed afterwards on this machine, as a ratio to the baseline.
    """
    from edgecompress.core.models import DigitsCNN, DigitsMLP
    from edgecompress.orchestration.curves import sweep
    from edgecompress.orchestration.curves.dense_baseline import thinning_refusal
    from edgecompress.orchestration.curves.sparsity_sweep import check_sweep
    from edgecompress.reporting.sweep_summary import comparison_lines
    from edgecompress.storage.paths import check_output_dir
    from edgecompress.storage.rundir import owned_run_dir

    level_values = tuple(_floats(levels, "--levels"))
    method_names = tuple(m.strip() for m in methods.split(",") if m.strip())
    check_sweep(level_values, method_names, finetune_epochs, tolerance, latency_batch)
    check_output_dir(out)
    baseline = _Baseline(recipe, seed, trust_pickle, executor, jobs, ray_address, trust_code)
    small = {"digits-cnn": DigitsCNN, "digits-mlp": DigitsMLP}.get(baseline.model_name, True) if dense_baseline else None
    if small is True and (why := thinning_refusal(baseline.model, baseline.task.example_input())):
        console.print(f"no smaller dense models: {why}")
        small = None
    with owned_run_dir(out, "sweep", resume=resume, force=force):
        model, task = baseline.trained(out, resume)
        result = sweep(model, task, out, level_values, method_names, finetune_epochs, tolerance, baseline.seed, small_dense=small,
                       baseline_epochs=baseline.epochs, from_scratch=small is True, executor=baseline.executor, latency_batch=latency_batch, resume=resume)
    for line in comparison_lines(result):
        console.print(line)
    for method, spot in result.sweet_spots.items():
        where = (f"level {spot.level:g}: {spot.score:.2f} (baseline {result.baseline.score:.2f}), {spot.storage_bytes:,} B packed, "
                 f"latency {result.latencies[spot.key].ratio_to_baseline:.2f}x" if spot else "none within tolerance")
        console.print(f"sweet spot, {method}: {where}")
    console.print(f"table: {out / 'sweep.csv'}   latency: {out / 'latency.csv'}   plot: {out / 'sweep.png'}")


@app.command("sensitivity")
def sensitivity_command(
    levels: str = typer.Option("0.5,0.7,0.8,0.9,0.95", "--levels", help="Comma-separated sparsity levels in (0, 1)."),
    tolerance: float = typer.Option(0.5, "--tolerance", min=0.0, help="Largest metric drop a layer's amount may cause."),
    out: Path = typer.Option(Path("runs/sensitivity"), "--out", help="Directory for sensitivity.json and sensitivity.png."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=MAX_SEED, help=_SEED_HELP),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help=_JOBS_HELP),
    executor: Optional[str] = typer.Option(None, "--executor", help=_EXECUTOR_HELP),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help=_RAY_ADDRESS_HELP),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help=_RECIPE_HELP),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="With --recipe: allow unpickling a whole saved model file it names."),
    trust_code: bool = typer.Option(False, "--trust-code", help="With --recipe: " + _TRUST_CODE_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue the analysis in --out (killed or finished): keep the trained baseline and the trials it finished with the same model and settings."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Prune each layer of the demo's digits CNN (or a recipe's model) alone at each level and measure the drop; suggest per-layer amounts.

    sensitivity.json holds a ready `prune` stage whose per_layer amounts give sensitive layers less sparsity.
    Trials run in parallel with --jobs N or on Ray with --executor ray, with the same results; each is kept in
    --out/layers as it finishes, so --resume reruns only the missing ones. A directory holding an earlier
    output is refused unless --resume or --force.
    """
    from edgecompress.orchestration.curves.sensitivity import check_sensitivity, layer_sensitivity
    from edgecompress.storage.paths import check_output_dir
    from edgecompress.storage.rundir import owned_run_dir

    level_values = tuple(_floats(levels, "--levels"))
    check_sensitivity(level_values, tolerance)
    check_output_dir(out)
    baseline = _Baseline(recipe, seed, trust_pickle, executor, jobs, ray_address, trust_code)
    with owned_run_dir(out, "sensitivity", resume=resume, force=force):
        model, task = baseline.trained(out, resume)
        document = layer_sensitivity(model, task, out, level_values, tolerance, executor=baseline.executor, resume=resume)
    amounts = ", ".join(f"{k}: {v:g}" for k, v in document["per_layer"].items())
    console.print(f"per-layer amounts within {tolerance:g} ({document['scored_on']}): {amounts}")
    console.print(f"details: {out / 'sensitivity.json'}   plot: {out / 'sensitivity.png'}")


def _floats(text: str, field: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise UserError(f"{field}: cannot parse {shown!r}; give comma-separated numbers, e.g. 0.5,0.8,0.9") from None


class _Baseline:
    """The model that sweep, sensitivity and fit compress, and where their trials run: the recipe's model, task,
    seed and execution, or the demo's recipe (the digits CNN) without --recipe; --executor/--jobs/--ray-address
    on the command line win over the recipe's execution section. Everything is validated before any training."""

    def __init__(self, recipe_path, seed, trust_pickle, executor, jobs, ray_address, trust_code=False):
        from edgecompress.core.tasks.checks import check_task
        from edgecompress.orchestration.demo import demo_recipe
        from edgecompress.orchestration.executors import make_executor
        from edgecompress.orchestration.recipe import load_recipe
        from edgecompress.orchestration.recipe.run import resolve_recipe

        self.recipe = load_recipe(recipe_path, seed) if recipe_path is not None else demo_recipe(seed or 0)
        self.seed = self.recipe.seed
        self.model_name = self.recipe.model
        self.epochs = self.recipe.train.epochs if self.recipe.train is not None else 40
        if executor is None and jobs is None and ray_address is None:
            self.executor = self.recipe.execution.make()
        else:
            self.executor = make_executor(executor or "local", jobs or 1, ray_address)
        loaded, self.task = resolve_recipe(self.recipe, trust_pickle, trust_code)
        self.model = loaded.module
        check_task(self.model, self.task)

    def trained(self, out: Path, resume: bool):
        """The recipe's model trained as its `train` section says (the demo's: 40 epochs), and its task; with
        `out`, kept in out/checkpoints and reused by `resume`."""
        from edgecompress.orchestration.recipe.run import train_baseline

        return train_baseline(self.model, self.task, self.recipe, out, resume), self.task


@app.command("fit")
def fit_command(
    max_size: Optional[str] = typer.Option(None, "--max-size", help="Size budget with its unit, e.g. 20KB or 16KiB (of the packed file unless --size-of onnx; a bare number is refused)."),
    max_latency: Optional[str] = typer.Option(None, "--max-latency", help="Latency budget at batch 256 in ONNX Runtime (1 thread): a ratio to the baseline's, e.g. 0.5 or 0.5x, or absolute, e.g. 0.3ms or 300us."),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="Largest allowed metric drop vs the baseline (metric units); no limit if omitted."),
    size_of: str = typer.Option("packed", "--size-of", help="Which size the budget applies to: packed (.ecz) or onnx (the runnable file)."),
    out: Path = typer.Option(Path("runs/fit"), "--out", help="Directory for the candidates, fit.json and pareto.png."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=MAX_SEED, help=_SEED_HELP),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help=_JOBS_HELP.replace("trials", "candidates")),
    executor: Optional[str] = typer.Option(None, "--executor", help=_EXECUTOR_HELP.replace("trials", "candidates")),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help=_RAY_ADDRESS_HELP),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help=_RECIPE_HELP),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="With --recipe: allow unpickling a whole saved model file it names."),
    trust_code: bool = typer.Option(False, "--trust-code", help="With --recipe: " + _TRUST_CODE_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue the fit in --out (killed or finished): keep the trained baseline and the candidates it completed with the same settings."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    target: str = typer.Option("portable", "--target", help=_TARGET_HELP.replace(" [default: the recipe's, else portable]", " [default: portable]")),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=_VERBOSE_HELP),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP.replace("the table", "the lines")),
) -> None:
    """Find the smallest compressed digits CNN (or a recipe's model) within --max-size and/or --max-latency that loses at most --max-drop.

    Trains the demo's baseline, runs candidate recipes from mild to aggressive, and returns the smallest one
    that meets every target, with the Pareto front of size vs accuracy; if none does, it says so and returns
    the best it found (the most accurate within the size/latency budget, else the one closest to it).
    A ratio latency budget compares each candidate with the baseline timed in the same run (trustworthy on a
    busy machine); an absolute one depends on the machine and its load.
    Candidates run in parallel with --jobs N or on Ray with --executor ray (same sizes and scores); each is
    saved as it finishes (the trained baseline too, in --out/checkpoints), and --resume reruns only the candidates a
    killed run had not finished, without training the baseline again. Without
    --resume or --force, a directory holding an earlier fit is refused.
    """
    from edgecompress.core.sizes import parse_size
    from edgecompress.orchestration.search.fit import check_targets, fit
    from edgecompress.storage.paths import check_output_dir
    from edgecompress.storage.rundir import owned_run_dir

    budget = parse_size(max_size, field="--max-size") if max_size is not None else None
    check_targets(max_drop, size_of, budget, max_latency)
    check_output_dir(out)
    with _output(quiet, verbose):
        baseline = _Baseline(recipe, seed, trust_pickle, executor, jobs, ray_address, trust_code)
        with owned_run_dir(out, "fit", resume=resume, force=force):
            model, task = baseline.trained(out, resume)
            result = fit(model, task, out, budget, max_drop, size_of=size_of, seed=baseline.seed, max_latency=max_latency,
                         executor=baseline.executor, resume=resume, target=check_target(target))
    if as_json:
        document = json.loads((out / "fit.json").read_text(encoding="utf-8"))
        _print_json({"command": "fit", "out": str(out), "chosen_dir": str(out / result.chosen.directory),
                     "fit_file": str(out / "fit.json"), "plot": str(out / "pareto.png"), **document})
        return
    console.print(result.message)
    console.print(f"chosen: {out / result.chosen.directory}   all candidates: {out / 'fit.json'}   plot: {out / 'pareto.png'}")


@app.command("encoder")
def encoder_command(
    route: str = typer.Argument("int8", help="int8 (fast, ~4x smaller), int4 (~6x smaller, distilled) or structured (FFN neurons removed, distilled): the recipes examples/minilm-ROUTE.yaml."),
    out: Path = typer.Option(Path("runs/encoder"), "--out", help="Directory for the run (baseline.onnx, final.onnx, metrics.json, report) and artifact/ (model.onnx + tokenizer)."),
    model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="A Hugging Face encoder directory (safetensors); default: the bundled all-MiniLM-L6-v2."),
    distill_seconds: Optional[float] = typer.Option(None, "--distill-seconds", min=0.0, help="Time budget of the route's distill stage (0: no distillation); int4 and structured."),
    keep_float: Optional[int] = typer.Option(None, "--keep-float", min=0, help="int8 only: keep this many MatMuls in fp32, those with the worst int8 error on the calibration sentences (mixed precision; each costs 3 bytes per weight)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Random seed (corpus split, distillation order)."),
    target: str = typer.Option("portable", "--target", help=_TARGET_HELP.replace(" [default: the recipe's, else portable]", " [default: portable]")),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_RUN_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Compress a sentence encoder (default: all-MiniLM-L6-v2, offline) with a preset recipe and measure it.

    A shortcut for `edgecompress run examples/minilm-ROUTE.yaml` (with model: set to --model-dir): the same
    stages on the same pipeline. For other settings (attention-head removal, another quantization, several
    steps at once) copy that file, edit its stages and `run` it. Fidelity (mean and 5th-percentile cosine,
    overlap@10 of nearest neighbours) is computed on 2,000 held-out sentences from the standard library's
    docstrings by running the shipped ONNX files in ONNX Runtime; choices and calibration never see them.
    """
    from edgecompress.families.encoder.presets import BUILTIN_ENCODER, route_stages
    from edgecompress.families.encoder.task import ARTIFACT_DIR
    from edgecompress.orchestration.recipe import run_recipe
    from edgecompress.orchestration.recipe.schema import Recipe
    from edgecompress.storage.paths import check_input_dir, check_output_dir

    stages = route_stages(route, distill_seconds=distill_seconds, keep_float=keep_float)
    check_output_dir(out)
    if model_dir is not None:
        check_input_dir(model_dir, "--model-dir")
    recipe = Recipe(model=str(model_dir) if model_dir else BUILTIN_ENCODER, task="sentence-encoder", seed=seed, target=check_target(target), stages=stages)
    result = run_recipe(recipe, out, resume=resume, force=force)
    _print_run_summary(result)
    fid = result.final.details["fidelity"]
    _print_line(f"{route}: cosine {fid['cosine_mean']:.4f} (p5 {fid['cosine_p5']:.4f}), overlap@10 {fid['overlap_at_10']:.3f}   artifact for embed: {out / ARTIFACT_DIR}")


GENERATION_CHARS = 40  # of each side-by-side continuation in the llm summary (generations.json has them whole)


@app.command("llm")
def llm_command(
    route: str = typer.Argument("int8", help="int8 (dynamic int8 MatMuls, token table int8, ~3.4x smaller), int4 (MatMulNBits blocks of 32 rounded by GPTQ, token table int4, ~5.5x smaller), ternary (BitNet b1.58 absmean weights recovered by KL distillation, shipped as int8 with a 4-bit token table; the packed .ecz stores them at ~1.6 bits), structured (a third of the query heads per key/value group, three quarters of the FFN neurons and 2 layers removed for real, KL distillation, then int8) or sparse24 (SparseGPT 2:4, KL distillation with the masks held, then int8; the zeros shrink only the packed .ecz): the recipes examples/lm-ROUTE.yaml."),
    out: Path = typer.Option(Path("runs/llm"), "--out", help="Directory for the run (baseline.onnx, final.onnx, metrics.json, report) and artifact/ (model.onnx + tokenizer, for generate)."),
    model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="A Hugging Face decoder directory (Llama, Qwen2, GPT-2 style; safetensors); default: the built-in stdlib-coder, trained once per machine (~10 min)."),
    distill_seconds: Optional[float] = typer.Option(None, "--distill-seconds", min=0.0, help="Time budget of the route's distill stage in seconds (0: no distillation); ternary, structured, sparse24."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Random seed (training windows, calibration)."),
    target: str = typer.Option("portable", "--target", help=_TARGET_HELP.replace(" [default: the recipe's, else portable]", " [default: portable]")),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_RUN_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Compress a decoder language model (default: the built-in stdlib-coder) with a preset recipe and measure it.

    A shortcut for `edgecompress run examples/lm-ROUTE.yaml` (with model: set to --model-dir): the same stages
    on the same pipeline. Perplexity and next-token agreement with the original (top-1, KL) are computed on
    held-out standard-library source files by running the shipped ONNX file (with its key/value cache) in ONNX
    Runtime; latency is one decoding step at batch 1 with 127 cached tokens, and the time to first token is the
    step over a 128-token prompt (metrics.json: time_to_first_token). Run the result with
    `edgecompress generate OUT/artifact "prompt"`.
    """
    from edgecompress.families.lm.builtin import BUILTIN_LM
    from edgecompress.families.lm.presets import route_stages
    from edgecompress.families.lm.task import ARTIFACT_DIR, GENERATIONS_FILE, TASK_NAME
    from edgecompress.orchestration.recipe import run_recipe
    from edgecompress.orchestration.recipe.schema import Recipe
    from edgecompress.storage.paths import check_input_dir, check_output_dir

    stages = route_stages(route, distill_seconds=distill_seconds)
    check_output_dir(out)
    if model_dir is not None:
        check_input_dir(model_dir, "--model-dir")
    recipe = Recipe(model=str(model_dir) if model_dir else BUILTIN_LM, task=TASK_NAME, seed=seed, target=check_target(target), stages=stages)
    result = run_recipe(recipe, out, resume=resume, force=force)
    _print_run_summary(result)
    agreement = result.final.details["agreement"]
    decode_ms = result.final.latency[1].median_ms
    first = result.final.details["time_to_first_token"]
    _print_line(f"{route}: perplexity {result.final.score:.2f} (original {result.baseline.score:.2f}), top-1 agreement "
                f"{agreement['top1']:.3f}, KL {agreement['kl_mean']:.4f}, decode {1000 / decode_ms:,.0f} tokens/s, "
                f"first token {first['median_ms']:.1f} ms after {first['prompt_tokens']} prompt tokens   "
                f"artifact for generate: {out / ARTIFACT_DIR}")
    for row in json.loads((out / GENERATIONS_FILE).read_text(encoding="utf-8")):
        texts = "   ".join(f"{name}: {row[name][:GENERATION_CHARS]!r}" for name in ("original", "compressed") if name in row)
        _print_line(f"  {row['prompt'][-24:]!r} -> {texts}")


@app.command("generate")
def generate_command(
    artifact: Path = typer.Argument(..., help="An artifact folder written by `edgecompress llm` or a language-model run (model.onnx, tokenizer, lm.json)."),
    prompt: str = typer.Argument(..., help="The text to continue."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, max=100_000, help="Tokens to generate at most (stops early at end-of-text)."),
    top_k: int = typer.Option(1, "--top-k", min=1, max=100_000, help="1: greedy; k: sample from the k most likely tokens."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Random seed of top-k sampling."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (text, tokens, timings) on stdout."),
) -> None:
    """Continue a prompt with a shipped decoder, run by ONNX Runtime with its key/value cache (the file that was measured).

    Prints the continuation on stdout, and the time to first token and decoding speed (batch 1, one thread)
    on stderr.
    """
    from edgecompress.families.lm.artifact import generate, open_artifact
    from edgecompress.runtime.targets import host_cpu
    from edgecompress.storage.paths import check_input_dir

    check_input_dir(artifact, "artifact")
    result = generate(open_artifact(artifact), prompt, max_new_tokens=max_new_tokens, top_k=top_k, seed=seed)
    if as_json:
        _print_json({"prompt": prompt, "text": result.text, "tokens": result.tokens, "prompt_tokens": len(result.prompt_tokens),
                     "first_token_ms": round(result.first_token_ms, 3), "decode_tokens_per_s": round(result.decode_tokens_per_s, 1)})
        return
    typer.echo(prompt + result.text)
    console.print(f"{len(result.tokens)} tokens; first token {result.first_token_ms:.1f} ms; decode {result.decode_tokens_per_s:,.0f} tokens/s "
                  f"(batch 1, one thread, {host_cpu().describe()})")


@app.command("embed")
def embed_command(
    artifact: Path = typer.Argument(..., help="An artifact folder written by `edgecompress encoder` (model.onnx, tokenizer, encoder.json)."),
    sentences: Optional[list[str]] = typer.Argument(None, help="Sentences to embed (or use --file)."),
    file: Optional[Path] = typer.Option(None, "--file", help="A UTF-8 text file with one sentence per line."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the embeddings here as .npy (one row per sentence) instead of printing JSON."),
    force: bool = typer.Option(False, "--force", help=_FORCE_FILE_HELP),
) -> None:
    """Embed sentences with a shipped encoder artifact, run by ONNX Runtime (the file that was measured)."""
    import numpy as np

    from edgecompress.families.encoder.artifact import embed
    from edgecompress.storage.files import atomic_path
    from edgecompress.storage.paths import check_input_dir, check_input_file, check_output_file

    check_input_dir(artifact, "artifact")
    texts = list(sentences or [])
    if file is not None:
        texts += _text_lines(check_input_file(file, "--file"))
    if not texts:
        raise UserError("sentences: nothing to embed; pass sentences as arguments or --file FILE")
    if out is not None:
        if out.suffix != ".npy":
            raise UserError(f"--out: {out} must end in .npy")
        check_output_file(out, inputs=[file] if file is not None else [], force=force)
    vectors = embed(artifact, texts)
    if out is None:
        typer.echo(json.dumps([[round(float(v), 6) for v in row] for row in vectors]))
        return
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
    console.print(f"{len(texts)} embeddings of width {vectors.shape[1]} -> {out}")


@app.command("verify")
def verify_command(
    artifact: Path = typer.Argument(..., help="The --out folder of run, demo or encoder."),
    target: str = typer.Option("portable", "--target", help="CPU class to run it on: x86-avx2 (emulated by qemu on any x86 host), arm64 (emulated, after `make emulators`), x86-vnni (only on such a machine), auto (this machine), or portable (every class reachable here)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate at most this many samples (encoders: sentences, default 256)."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="The recipe the run was made from, when its task is your own code (module:function)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Run a finished artifact on CPUs of other classes (emulated with qemu-user) and compare with this machine.

    For each CPU class: the task metric computed from the outputs there, whether those outputs equal this
    machine's bit for bit, and the share of integer-node outputs that are off by more than one step. Emulated
    runs are never timed: emulated time is not a latency. Exit code 1 if any class computes differently.
    """
    from edgecompress.orchestration.verify import verify

    report = verify(artifact, check_target(target), limit=limit, recipe=recipe)
    if as_json:
        console.print_json(json.dumps(report.to_json()))
    else:
        lines = [f"{report.artifact} ({report.metric}); this machine: {report.host_class}"]
        for result in report.results:
            same = "outputs identical to this machine's" if result.max_output_difference == 0 else f"outputs differ by up to {result.max_output_difference:.4g}"
            lines.append(f"  {result.cpu_class}: {report.metric} {result.score:.4f}, {same}; {result.exactness.summary()}")
        lines += [f"  {cpu_class}: not run here: {why}" for cpu_class, why in report.unreachable.items()]
        for line in lines:  # whole lines: the terminal wraps them, a log keeps them
            console.print(line, soft_wrap=True, markup=False)
    if not report.consistent:
        raise typer.Exit(1)
def _text_lines(file: Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file; a binary file is refused, not half-read."""
    from edgecompress.untrusted.limits import MAX_TEXT_BYTES
    from edgecompress.untrusted.regular_files import read_regular

    data = read_regular(file, "--file:", MAX_TEXT_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"--file: {file} is not UTF-8 text (byte {exc.start:,} is not); pass a text file with one sentence per line") from None
    if "\0" in text:
        raise UserError(f"--file: {file} holds NUL bytes, so it is binary, not text; pass a text file with one sentence per line")
    return [line.strip() for line in text.splitlines() if line.strip()]


@app.command("pack")
def pack_command(
    onnx_file: Path = typer.Argument(..., help="ONNX model to pack."),
    out: Optional[Path] = typer.Option(None, "--out", help="Packed file to write (default: beside the model, .ecz); an existing file is replaced only with --force."),
    force: bool = typer.Option(False, "--force", help=_FORCE_FILE_HELP),
) -> None:
    """Pack an ONNX model into a .ecz file: zeros as a bitmask, entropy-coded, checksummed (docs/format.md)."""
    from edgecompress.delivery import pack

    info = pack(onnx_file, _file_to_file(onnx_file, "onnx_file", out, ".ecz", force))
    console.print(f"{info.path}: {info.packed_bytes:,} B ({info.onnx_bytes:,} B ONNX, {info.ratio:.1f}x smaller)")


@app.command("unpack")
def unpack_command(
    packed: Path = typer.Argument(..., help="A .ecz file written by edgecompress."),
    out: Optional[Path] = typer.Option(None, "--out", help="ONNX file to write (default: beside it, .onnx); an existing file is replaced only with --force."),
    force: bool = typer.Option(False, "--force", help=_FORCE_FILE_HELP),
) -> None:
    """Rebuild the ONNX model from a .ecz file, bit for bit as it was evaluated (checksums verified)."""
    from edgecompress.delivery import unpack_to

    target = unpack_to(packed, _file_to_file(packed, "packed", out, ".onnx", force))
    console.print(f"{target}: {target.stat().st_size:,} B")


def _file_to_file(source: Path, field: str, out: Optional[Path], suffix: str, force: bool) -> Path:
    """pack and unpack: the input file and the output path (default: beside it, with `suffix`), checked before any work."""
    from edgecompress.storage.paths import check_input_file, check_output_file

    check_input_file(source, field)
    return check_output_file(out or source.with_suffix(suffix), "--out" if out else "output", [source], force)


@app.command("dtypes")
def dtypes_command(
    value: float = typer.Option(3.141592653589793, "--value", help="The number to represent (default: pi)."),
    int_range: float = typer.Option(4.0, "--int-range", help="Largest magnitude the integer grids cover (sets their scale)."),
) -> None:
    """The data-type table: VALUE in fp64, fp32, fp16, bf16, fp8, int8 and int4, with bits and % deviation."""
    from edgecompress.techniques.quantize.dtypes import MIN_INT_RANGE, dtype_table, format_dtype_table

    if not MIN_INT_RANGE <= int_range < math.inf:
        raise UserError(f"--int-range: must be a finite number of at least {MIN_INT_RANGE:.3g}, got {int_range:g}")
    console.print(format_dtype_table(dtype_table(value, int_max_abs=int_range)))


MAX_INPUT_ELEMENTS = 2**24  # 64 MB of float32: any real example input, checked before anything is allocated


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,1,8,8' or '1x1x8x8' -> (1, 1, 8, 8); at most 8 axes and MAX_INPUT_ELEMENTS elements."""
    shown = text if len(text) <= 40 else text[:40] + "..."
    parts = [p for p in text.replace("x", ",").replace(" ", "").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts if len(p) <= 12)
    except ValueError:
        shape = ()
    if not shape or len(shape) != len(parts) or len(shape) > 8 or any(d <= 0 for d in shape):
        raise UserError(f"--input-shape: cannot parse {shown!r}; give up to 8 positive integers with the batch axis, e.g. 1,1,8,8")
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise UserError(
            f"--input-shape: {shown} is {math.prod(shape):,} elements; an example input may have at most "
            f"{MAX_INPUT_ELEMENTS:,} (64 MB), and batch 1 is enough"
        )
    return shape


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line and exit code 2 for bad input, 1 for a runtime failure; tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name="edgecompress", standalone_mode=False)
        if result == 130:  # typer turns Ctrl-C into exit code 130, silently (our commands return nothing)
            _error("interrupted")
        return result if isinstance(result, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors from argument parsing
        if exc.format_message().strip():  # empty when help was shown for a bare command
            _error(exc.format_message(), hint=_usage_hint(args))
        return 2 if exc.exit_code == 1 else exc.exit_code
    except typer.Abort:
        _error("aborted")
        return 130
    except UserError as exc:
        _error(str(exc))
        return 2
    except pydantic.ValidationError as exc:  # a setting built from arguments outside a recipe
        _error("; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except SystemExit as exc:  # user code (a model or task factory, a metric) must not end a command with success
        if _exits_from_cli_library(exc):  # shell completion done, or stdout closed by `| head`
            return exc.code if isinstance(exc.code, int) else 0
        _error(f"user code called sys.exit({exc.code!r}) before the command finished", hint="nothing was completed")
        return 1
    except Exception as exc:  # a genuine failure: one line, traceback with --debug
        if _options["debug"] or "--debug" in args:
            traceback.print_exc()
        message = str(exc) if isinstance(exc, RunFailure) else f"{type(exc).__name__}: {exc}"
        _error(message.strip().splitlines()[0] if message.strip() else type(exc).__name__, hint="rerun with --debug for the traceback")
        return 1


def _exits_from_cli_library(exc: SystemExit) -> bool:
    """Whether click, typer or rich raised `exc` themselves (after printing a completion script; rich on a stdout
    closed early, as by `| head`)."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
    return module.split(".")[0] in ("click", "typer", "rich")


def _usage_hint(args: list[str]) -> str:
    command = next((a for a in args if not a.startswith("-")), None)
    return f"see: edgecompress {command + ' ' if command in app_commands() else ''}--help"


def app_commands() -> set[str]:
    return {c.name or c.callback.__name__ for c in app.registered_commands}


MAX_ERROR_CHARS = 1000  # an error line quotes input in bounded pieces; this bounds the line whatever slips through


def _error(message: str, hint: str = "") -> None:
    line = " ".join(message[: 4 * MAX_ERROR_CHARS].split())
    text = f"error: {line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS] + '...'}"
    if hint:
        text += f" ({hint})"
    typer.echo(text, err=True)


if __name__ == "__main__":
    sys.exit(main())
