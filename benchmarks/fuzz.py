"""Fuzzing the command line: generated recipes and argument lists, each run through `edgecompress.cli.main`.

Every case must end in one of three ways: refused (exit code 2, exactly one `error:` line, nothing written),
accepted (exit code 0: help, `dtypes`, `pack`/`unpack` of a good file), or valid (every check passed and the
command reached its work, where the harness stops it: taking its output directory, or loading an encoder).
Anything else is a problem: exit code 1, a traceback, several lines, a file written by a refused command,
training before the checks, or more than 2 seconds of CPU before the verdict.

`make bench` runs `BUDGET` cases, new ones each time (a random Hypothesis seed, recorded in BENCHMARKS.md so a
problem can be replayed; `make fuzz` runs this section alone); the test suite runs a smaller, fixed set with
the same strategies and verdict (tests/robustness/test_malformed_input.py).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

BUDGET = {"recipes": 5000, "arguments": 6000}  # at least 10,000 cases in all
MAX_CPU_SECONDS = 2.0
LONG_NAME = "n" * 300
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RECIPE_FILE = "recipe.yaml"  # where a generated recipe is written, in the scratch folder

# Recipes: fields of every stage, with values of every kind, including the ones that once ran minutes of work
# before being refused (int4 block sizes, overflowing seeds, infinite weight decay, a vanishing temperature).
FIELDS = ["stage", "pattern", "criterion", "amount", "scope", "schedule", "steps", "epochs", "lr", "block", "n", "m",
          "layers", "keep", "per_layer", "mode", "calibration", "distill", "masks", "score_fn", "bogus", "block_size",
          "weight_decay", "temperature", "bits", "keep_float", "tolerance", "energy", "round_to"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 2000), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([17, 16, 48, 4096, 8192, 1e-300, 1e-320, 1e308, 2**64 - 1, 10**23, -(2**63)]),
    st.sampled_from(["prune", "finetune", "quantize", "qat", "factorize", "channel", "nm", "block", "l1", "wanda",
                     "global", "gradual", "static", "dynamic", "int4", "fp16", "ternary", "digits-cnn", "digits",
                     "os:path", "os:system", "..:f", ".models:flat", "x:y", "", "*", "fc1", "/dev/null", LONG_NAME]),
    st.text(max_size=12),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
STAGE = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6)
# Near-valid recipes: the right fields with plausible and edge values, so the deeper checks (stage order, layer
# names, combinations) are reached too, not only the schema's.
PLAUSIBLE = {
    "stage": ["prune", "finetune", "factorize", "qat", "quantize"],
    "pattern": ["unstructured", "channel", "block", "nm"], "criterion": ["l1", "l2", "taylor", "wanda", "movement", "random"],
    "amount": [0.0, 0.5, 0.9, 1.0, float("nan")], "scope": ["layer", "global"], "schedule": ["oneshot", "iterative", "gradual"],
    "epochs": [1, 0, 10_001], "lr": [1e-3, 0.0, float("inf")], "mode": ["static", "dynamic", "fp16", "int4"],
    "block_size": [16, 17, 32, 48], "weight_decay": [0.0, 0.5, float("inf")], "temperature": [4.0, 1e-300, 0.1],
    "distill": [0.0, 0.5, 1.5], "bits": [2, 4, 9, "ternary"], "keep_float": [["fc1"], ["nope*"]], "layers": [["conv*"], ["nope"]],
    "keep": [["fc2"]], "round_to": [8, 0], "keep_classifier": [True, False], "per_layer": [{"fc1": 0.5}, {"fc1": 1.5}],
}
PLAUSIBLE_STAGE = st.dictionaries(st.sampled_from(sorted(PLAUSIBLE)), st.none(), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.sampled_from(PLAUSIBLE[k]) for k in ["stage", *keys]})
)
PLAUSIBLE_RECIPE = st.fixed_dictionaries(
    {"model": st.sampled_from(["digits-cnn", "digits-mlp"]), "stages": st.lists(PLAUSIBLE_STAGE, min_size=1, max_size=4)},
    optional={"seed": st.sampled_from([0, 2**32 - 1, 2**32, 2**64 - 1]), "train": st.just({"epochs": 2})},
)
RANDOM_RECIPE = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(st.sampled_from(["digits-cnn", "digits-mlp", "nope", "os:getcwd", "os:system", "..:f",
                                                ".models:flat", "m.pt", "/dev/null", LONG_NAME + ".pt"]), VALUES),
            "weights": st.one_of(st.sampled_from(["/dev/null", "/", "missing.pt", LONG_NAME + ".pt"]), VALUES),
            "task": st.one_of(st.sampled_from(["digits", "nowhere", "os:system"]), VALUES),
            "seed": st.one_of(st.sampled_from([0, 7, 2**32 - 1, 2**32, 2**64 - 1, 10**23, -1]), VALUES),
            "train": st.one_of(VALUES, st.fixed_dictionaries({}, optional={"epochs": VALUES, "lr": VALUES})),
            "stages": st.one_of(VALUES, st.lists(st.one_of(STAGE, VALUES), max_size=4)),
            "execution": VALUES,
            "extra": VALUES,
        },
    ),
    VALUES,
)
RECIPE = st.one_of(RANDOM_RECIPE, PLAUSIBLE_RECIPE)

# Argument lists: tokens that mean something to each command (its options, values of the right and wrong
# kind) and files that exist but are broken ({name} is replaced by a path from `inputs`).
COMMON = ["--out", "--seed", "--help", "--bogus", "", "-1", "0", "3", "nan", "inf", "1e309", "1e-320", "abc", "x:y",
          "/", "--debug", "--force", "--resume", "9" * 400, "1" + "0" * 23, "{long}", "{folder}", "{a_file}",
          "{under_a_file}", "/dev/null"]
COMMAND_TOKENS = {
    "inspect": ["digits-cnn", "nope", "os:getcwd", "os:system", "..:f", ".models:flat", "--input-shape", "1,1,8,8",
                "1x0", "1,1,65536,65536", "--weights", "--trust-pickle", "--target-size", "50KB", "-5KB",
                "{garbage_onnx}", "{missing}", "{model_safetensors}"],
    "run": ["{examples}/digits.yaml", "{bad_yaml}", "{missing}", "{valid_yaml}", "{int4_17_yaml}", "--trust-pickle"],
    "demo": [],
    "sweep": ["--levels", "0.5,0.9", "1.5", "0.5,,x", "--methods", "channel", "lowrank,bogus", "bogus",
              "--finetune-epochs", "--tolerance", "--jobs", "--executor", "local", "dask", "--no-dense-baseline",
              "--latency-batch", "--recipe", "{valid_yaml}"],
    "sensitivity": ["--levels", "0.5,0.9", "1.5", "--tolerance", "--recipe", "{valid_yaml}", "{bad_yaml}"],
    "fit": ["--max-size", "20KB", "0KB", "--max-latency", "0.5x", "-3ms", "--max-drop", "--size-of", "packed",
            "onnx", "zip"],
    "pack": ["{tiny_onnx}", "{garbage_onnx}", "{missing}", "{empty}", "{tampered_ecz}"],
    "unpack": ["{tiny_ecz}", "{truncated_ecz}", "{tampered_ecz}", "{garbage_onnx}", "{missing}", "{empty}"],
    "encoder": ["int8", "int4", "structured", "int2", "--model-dir", "{missing}", "--distill-seconds",
                "1.0", "0.5", "--resume", "--keep-float"],
    "embed": ["{bad_artifact}", "{outside_artifact}", "{missing}", "hello world", "--file", "{empty}", "{binary}",
              "{garbage_onnx}", "x.npy"],
    "dtypes": ["--value", "--int-range", "1e-300"],
}
# where --out points: a fresh path, an existing file, a directory holding the user's files, under a file
OUTS = ["{fresh}", "{a_file}", "{users_dir}", "{under_a_file}", "{long}", "{fresh}/{long}"]

# Well-formed argument lists: each command's positionals and options with values of the right and wrong kind,
# so the checks behind the parser are reached (None: a flag without a value).
SEEDS = ["0", "7", "-1", str(2**32 - 1), str(2**32), "1" + "0" * 23]
LEVELS = ["0.5,0.9", "1.5", "nan", "", "0.5,,x", "1e-320"]
RECIPES = ["{valid_yaml}", "{bad_yaml}", "{int4_17_yaml}", "{missing}", "{folder}"]
TRIALS = {"--seed": SEEDS, "--jobs": ["1", "2", "0"], "--executor": ["local", "dask"], "--recipe": RECIPES, "--force": None}
WELL_FORMED = {
    "inspect": (["digits-cnn", "digits-mlp", "nope", "os:getcwd", "os:system", "..:f", ".models:flat", "{garbage_onnx}",
                 "{missing}", "{model_safetensors}", "{folder}", "/dev/null", "{long}"],
                {"--input-shape": ["1,1,8,8", "1x0", "1,1,65536,65536", "1,8,8", "1," + "9" * 400],
                 "--weights": ["{model_safetensors}", "{folder}", "/dev/null", "{missing}", "{garbage_onnx}"],
                 "--target-size": ["50KB", "-5KB", "20", "9" * 400], "--trust-pickle": None, "--force": None}),
    "run": (["{examples}/digits.yaml", *RECIPES, "/dev/null"],
            {"--seed": SEEDS, "--trust-pickle": None, "--resume": None, "--force": None}),
    "demo": ([], {"--seed": SEEDS, "--resume": None, "--force": None}),
    "sweep": ([], {**TRIALS, "--levels": LEVELS, "--methods": ["channel", "lowrank,bogus", "", "unstructured,channel8"],
                   "--finetune-epochs": ["1", "0"], "--tolerance": ["0.5", "nan", "-1"], "--latency-batch": ["256", "0"],
                   "--no-dense-baseline": None, "--resume": None}),
    "sensitivity": ([], {**TRIALS, "--levels": LEVELS, "--tolerance": ["0.5", "nan", "-1"]}),
    "fit": ([], {**TRIALS, "--max-size": ["20KB", "0KB", "9" * 400], "--max-latency": ["0.5x", "-3ms", "0.3ms", "9" * 400],
                 "--max-drop": ["1", "-1", "nan"], "--size-of": ["packed", "onnx", "zip"], "--resume": None}),
    "pack": (["{tiny_onnx}", "{garbage_onnx}", "{missing}", "{empty}", "{tampered_ecz}", "{folder}", "/dev/null"], {"--force": None}),
    "unpack": (["{tiny_ecz}", "{truncated_ecz}", "{tampered_ecz}", "{garbage_onnx}", "{missing}", "{empty}", "{folder}"],
               {"--force": None}),
    "encoder": (["int8", "int4", "structured", "int2"],
                {"--model-dir": ["{missing}", "{folder}", "{a_file}"], "--distill-seconds": ["0", "-1", "inf", "9" * 400],
                 "--resume": None,
                 "--keep-float": ["0", "3", "-1"], "--seed": SEEDS, "--force": None}),
    "embed": (["{bad_artifact}", "{outside_artifact}", "{missing}", "{folder}", "hello world"],
              {"--file": ["{empty}", "{binary}", "{folder}", "/dev/null", "{valid_yaml}"], "--force": None}),
    "dtypes": ([], {"--value": ["nan", "1e308", "3.14", "-0"], "--int-range": ["1e-320", "1e-300", "4", "inf"]}),
}


class WorkReached(BaseException):
    """The command passed every check and reached its work: the input was valid."""


class TrainedBeforeChecks(BaseException):
    """A training step ran before the command took its output directory."""


@contextlib.contextmanager
def stopped_at_work():
    """While active, commands stop where their work starts, and training before that is caught."""
    import torch

    from edgecompress.families import registry as family_registry
    from edgecompress.storage.rundir import _Owned

    def reached(*args, **kwargs):
        raise WorkReached

    def trained(*args, **kwargs):
        raise TrainedBeforeChecks

    patches = [(_Owned, "locked", reached), (family_registry, "load_family", reached), (torch.optim.Adam, "step", trained)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def make_inputs(root: Path) -> dict[str, Path]:
    """The files that `{name}` tokens stand for: good ones and broken ones."""
    from edgecompress.core.models import DigitsCNN
    from edgecompress.core.models.checkpoint import save_model_file
    from edgecompress.delivery import pack

    for entry in root.glob("*") if root.is_dir() else []:
        if entry.name != "scratch":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / "garbage.onnx").write_bytes(b"\x08\x07not a protobuf" * 8)
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (root / "folder").mkdir(exist_ok=True)
    (root / "a_file").write_text("x")
    (root / "users_dir").mkdir(exist_ok=True)
    (root / "users_dir" / "notes.txt").write_text("the user's")
    (root / "bad.yaml").write_text("model: [unclosed\n")
    (root / "valid.yaml").write_text("model: digits-cnn\nstages:\n  - stage: quantize\n")
    (root / "int4_17.yaml").write_text("model: digits-mlp\nstages:\n  - {stage: quantize, mode: int4, block_size: 17}\n")
    (root / "artifact").mkdir(exist_ok=True)
    (root / "artifact" / "encoder.json").write_text("{not json")
    (root / "outside").mkdir(exist_ok=True)
    (root / "outside" / "encoder.json").write_text('{"model": "../garbage.onnx", "max_length": 8}')
    tiny = _tiny_onnx(root / "tiny.onnx")
    pack(tiny, root / "tiny.ecz")
    data = (root / "tiny.ecz").read_bytes()
    (root / "truncated.ecz").write_bytes(data[: len(data) // 2])
    (root / "tampered.ecz").write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    save_model_file(DigitsCNN(), root / "model.safetensors", arch="digits-cnn")
    return {
        "garbage_onnx": root / "garbage.onnx", "missing": root / "missing.onnx", "empty": root / "empty.txt",
        "binary": root / "binary.txt", "folder": root / "folder", "a_file": root / "a_file",
        "under_a_file": root / "a_file" / "x", "users_dir": root / "users_dir", "bad_yaml": root / "bad.yaml",
        "valid_yaml": root / "valid.yaml", "int4_17_yaml": root / "int4_17.yaml", "bad_artifact": root / "artifact",
        "outside_artifact": root / "outside", "tiny_onnx": tiny, "tiny_ecz": root / "tiny.ecz",
        "truncated_ecz": root / "truncated.ecz", "tampered_ecz": root / "tampered.ecz",
        "model_safetensors": root / "model.safetensors", "long": root / LONG_NAME,
    }


def _tiny_onnx(path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight],
    )
    onnx.save_model(helper.make_model(graph), str(path))
    return path


def command_args():
    """Argument lists: tokens in any order (the parser's errors), or well-formed options with values of the right
    and wrong kind (the checks behind it); --out pointing anywhere in OUTS."""
    def tokens(command):
        token = st.sampled_from(COMMAND_TOKENS[command] + COMMON) | st.text(max_size=6)
        return st.lists(token, max_size=7)

    def option(command):
        options = WELL_FORMED[command][1]
        return st.sampled_from(sorted(options)).flatmap(
            lambda name: st.just([name]) if options[name] is None else st.sampled_from(options[name]).map(lambda value: [name, value])
        )

    def well_formed(command):
        positionals = st.lists(st.sampled_from(WELL_FORMED[command][0]), min_size=1, max_size=2) if WELL_FORMED[command][0] else st.just([])
        return st.tuples(positionals, st.lists(option(command), max_size=4)).map(lambda t: [*t[0], *sum(t[1], [])])

    def for_command(command):
        rest = st.one_of(tokens(command), well_formed(command))
        if command == "dtypes":  # it writes nothing: no --out
            return rest.map(lambda r: [command, *r])
        usable = "{fresh}.npy" if command == "embed" else "{fresh}"
        out = st.just(usable) | st.sampled_from(OUTS)  # half the time a usable --out, so the rest is checked
        return st.tuples(rest, out).map(lambda t: [command, *t[0], "--out", t[1]])

    return st.sampled_from(sorted(COMMAND_TOKENS)).flatmap(for_command)


@dataclass
class Outcome:
    verdict: str  # refused, accepted, valid, or problem
    cpu_seconds: float
    detail: str = ""


def run_case(args: list[str], inputs: dict[str, Path], scratch: Path) -> Outcome:
    """Run one argument list (with `{name}` tokens replaced) and judge how it ended."""
    from edgecompress.cli import main

    fresh = scratch / "fresh"
    for leftover in scratch.iterdir():  # what an accepted case wrote (the recipe of this case stays)
        if leftover.name != RECIPE_FILE:
            shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()
    paths = {**{k: str(v) for k, v in inputs.items()}, "fresh": str(fresh), "long": LONG_NAME, "examples": str(EXAMPLES)}
    args = [_substitute(a, paths) for a in args]
    if "--help" in args:
        args = [a for a in args if a != "--help"]  # help succeeds by design
    before = _listing(inputs["folder"].parent)
    stderr = io.StringIO()

    def command():
        # in the scratch folder: a relative output path (even one named "--out") lands there, not in the repository
        with contextlib.chdir(scratch), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr), stopped_at_work():
            return main(args)

    code, escaped, cpu = own_cpu_seconds(command)
    if isinstance(escaped, WorkReached):
        if _listing(inputs["folder"].parent) != before:
            return Outcome("problem", cpu, f"wrote files before its work: {args}")
        return Outcome("valid", cpu)
    if isinstance(escaped, TrainedBeforeChecks):
        return Outcome("problem", cpu, f"trained before its checks: {args}")
    if escaped is not None:
        return Outcome("problem", cpu, f"{type(escaped).__name__} escaped main: {args}")
    err = stderr.getvalue()
    if "Traceback" in err:
        return Outcome("problem", cpu, f"traceback: {args}")
    if code == 0 and args[0] in ("dtypes", "pack", "unpack"):
        if _listing(inputs["folder"].parent) != before:  # --force replaced an input: put the inputs back
            make_inputs(inputs["folder"].parent)
        return Outcome("accepted", cpu)
    lines = [line for line in err.splitlines() if line.strip()]
    if code != 2 or len(lines) != 1 or not lines[0].startswith("error: "):
        return Outcome("problem", cpu, f"exit {code}, {len(lines)} lines ({lines[:1]}): {args}")
    if _listing(inputs["folder"].parent) != before:
        return Outcome("problem", cpu, f"refused but wrote files: {args}")
    if cpu > MAX_CPU_SECONDS:
        return Outcome("problem", cpu, f"{cpu:.1f} s of CPU before refusing: {args}")
    return Outcome("refused", cpu)


def own_cpu_seconds(call):
    """(what `call()` returned, the exception it raised or None, seconds of CPU it took on this thread).

    This thread only, with garbage collection paused: leftover worker threads of earlier tests and the
    collection of their garbage are not this command's CPU (they once made a 0.2 s refusal read 2.9 s).
    """
    gc.disable()
    start = time.thread_time()
    try:
        return call(), None, time.thread_time() - start
    except BaseException as exc:  # noqa: BLE001 - the caller judges whatever escaped
        return None, exc, time.thread_time() - start
    finally:
        gc.enable()


def run_recipe_case(recipe, inputs: dict[str, Path], scratch: Path) -> Outcome:
    path = scratch / RECIPE_FILE
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    return run_case(["run", str(path), "--out", "{fresh}"], inputs, scratch)


def _substitute(token: str, paths: dict[str, str]) -> str:
    for name, value in paths.items():
        token = token.replace("{" + name + "}", value)
    return token


def _listing(root: Path) -> list[tuple[str, int]]:
    """Every path under `root` with its size: what a refused command must not change."""
    entries = []
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            entries.append((str(path.relative_to(root)), path.stat().st_size if path.is_file() else -1))
    return sorted(entries)


@dataclass
class Tally:
    verdicts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    max_cpu: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.verdicts[outcome.verdict] += 1
        self.max_cpu = max(self.max_cpu, outcome.cpu_seconds)
        if outcome.verdict == "problem":
            self.problems.append(outcome.detail if len(outcome.detail) <= 300 else outcome.detail[:300] + "...")


def fuzz(recipes: int, arguments: int, root: Path, random_seed: int | None = None) -> dict[str, Tally]:
    """Run `recipes` generated recipes and `arguments` generated argument lists; tally how each ended.

    Without `random_seed` the cases are the same every time (CI); with one, new cases each run (nightly),
    which that seed reproduces.
    """
    inputs = make_inputs(root / "inputs")
    scratch = root / "inputs" / "scratch"
    scratch.mkdir(exist_ok=True)
    tallies = {"recipes": Tally(), "arguments": Tally()}
    quiet = settings(deadline=None, database=None, derandomize=random_seed is None, suppress_health_check=list(HealthCheck))
    seeded = (lambda test: test) if random_seed is None else seed(random_seed)

    @seeded
    @settings(quiet, max_examples=recipes)
    @given(recipe=RECIPE)
    def each_recipe(recipe):
        tallies["recipes"].add(run_recipe_case(recipe, inputs, scratch))

    @seeded
    @settings(quiet, max_examples=arguments)
    @given(args=command_args())
    def each_argument_list(args):
        tallies["arguments"].add(run_case(args, inputs, scratch))

    each_recipe()
    each_argument_list()
    return tallies


def run() -> dict:
    random_seed = int.from_bytes(os.urandom(4), "little")
    with tempfile.TemporaryDirectory(prefix="edgecompress-fuzz-") as root:
        start = time.perf_counter()
        tallies = fuzz(BUDGET["recipes"], BUDGET["arguments"], Path(root), random_seed)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "seed": random_seed, **{kind: tally.__dict__ for kind, tally in tallies.items()}}


def markdown(result: dict) -> str:
    rows = []
    for kind in ("recipes", "arguments"):
        tally = result[kind]
        verdicts = tally["verdicts"]
        rows.append(
            f"| {kind} | {sum(verdicts.values()):,} | {verdicts.get('refused', 0):,} | {verdicts.get('valid', 0):,} | "
            f"{verdicts.get('accepted', 0):,} | {len(tally['problems'])} | {tally['max_cpu']:.2f} |"
        )
    total = sum(sum(result[k]["verdicts"].values()) for k in ("recipes", "arguments"))
    problems = [p for k in ("recipes", "arguments") for p in result[k]["problems"]]
    listed = "".join(f"\n- {p}" for p in problems[:20])
    return (
        "## Fuzzing the command line\n\n"
        f"{total:,} generated cases (`benchmarks/fuzz.py`, Hypothesis seed {result['seed']}: new cases every run) in "
        f"{result['seconds']:.0f} s: "
        "recipes run with `edgecompress run`, and argument lists for every command. Each must be refused (exit 2, "
        "one line, nothing written, within 2 s of CPU), accepted (exit 0), or valid (every check passed: the "
        "harness stops it where its work starts). Anything else is a problem.\n\n"
        "| cases | run | refused | valid | accepted | problems | most CPU s before the verdict |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + ("\n\nProblems:" + listed if problems else "\n\nNo problems: no traceback, no exit code 1, no second line, no file written by a refused command.")
    )
