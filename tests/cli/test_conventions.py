"""What users expect of a command line: --version, -h, shell completion, help without `<bool>`, a light help
path, `validate`, "did you mean", recipe paths relative to the recipe, --quiet and --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import edgecompress
from edgecompress.cli import app_commands, main

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "onnxruntime", "onnx")


def _cli(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """`edgecompress ARGS` in a fresh interpreter, followed by the heavy modules that ended up imported (stderr)."""
    code = ("import sys\nfrom edgecompress.cli import main\ncode = main(sys.argv[1:])\n"
            f"print('IMPORTED', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\nsys.exit(code)")
    environment = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "80", **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment, timeout=120)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], ["run", "-h"]] + [[c, "--help"] for c in sorted(app_commands())])
def test_help_and_version_import_neither_torch_nor_onnxruntime(args):
    done = _cli(args)
    assert done.returncode == 0, done.stderr
    assert "IMPORTED []" in done.stderr
    if args == ["--version"]:
        assert done.stdout == f"edgecompress {edgecompress.__version__}\n"
    else:
        assert "Usage: edgecompress" in done.stdout and "<bool>" not in done.stdout


def test_flags_have_no_type_in_help_and_options_keep_theirs(capsys):
    assert main(["run", "-h"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text and "--force" in text and "--quiet" in text and "--json" in text
    assert "<path>" in text  # an option that takes a value still says what kind


def test_shell_completion_is_on():
    # the script `--install-completion` writes; asked for by name, since the shell it would detect is whatever runs the tests
    script = _cli([], env={"_EDGECOMPRESS_COMPLETE": "source_bash"})
    assert script.returncode == 0 and "complete -o default -F _edgecompress_completion edgecompress" in script.stdout
    assert "error" not in script.stderr
    done = _cli([], env={"_EDGECOMPRESS_COMPLETE": "complete_bash", "COMP_WORDS": "edgecompress vali", "COMP_CWORD": "1"})
    assert done.returncode == 0 and done.stdout.split() == ["validate"]


def _recipe(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


BAD = """\
    model: digits-cnn
    task: nowhere
    train: {epochs: 2, learning_rate: 0.01}
    stages:
      - stage: prune
        pattern: channels
        amount: 0.5
      - stage: quantize
      - stage: finetune
        distil: 0.5
      - stage: prun
    """


def test_validate_reports_every_problem_at_once_with_did_you_mean_exit_2(tmp_path, capsys):
    path = _recipe(tmp_path, BAD)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: recipe: 6 problem(s) in {path}: ")
    for problem in [
        "train.learning_rate: unknown field, did you mean 'lr'? (given 0.01)",
        "stage 1 (prune): pattern: unknown kind 'channels', did you mean 'channel'? (allowed: unstructured, channel, block, nm)",
        "stage 3 (finetune): distil: unknown field, did you mean 'distill'? (given 0.5)",
        "stage 4 (prun): unknown stage 'prun', did you mean 'prune'?",
        "stage 3 (finetune): cannot follow stage 2 (quantize)",  # the order, checked though other fields are wrong
        "task: unknown task 'nowhere'",  # and the task, in the same pass
    ]:
        assert problem in err, problem


def test_validate_gives_the_errors_run_gives_and_writes_nothing(tmp_path, capsys):
    path = _recipe(tmp_path, "model: digits-cnn\ntask: nowhere\nstages:\n  - stage: quantize\n  - stage: finetune\n")
    assert main(["validate", str(path)]) == 2
    from_validate = capsys.readouterr().err
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == from_validate and "2 problem(s)" in from_validate
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"]


def test_validate_passes_a_valid_recipe_with_exit_0(capsys):
    examples = Path(__file__).resolve().parents[2] / "examples"
    assert main(["validate", str(examples / "digits.yaml")]) == 0
    assert capsys.readouterr().out == f"{examples / 'digits.yaml'}: valid: digits-cnn on digits, 4 stage(s): prune, finetune, qat, quantize\n"


def test_validate_imports_torch_only_to_check_valid_stages_against_the_model(tmp_path):
    """A digits recipe with wrong fields is judged without torch; a valid one imports torch to build the model and
    check the stages against its layers, and nothing heavier (the handlers, ONNX Runtime, the digits data)."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    bad = _recipe(tmp_path, (examples / "digits.yaml").read_text().replace("amount: 0.5", "amout: 0.5"))
    heavy = ["torch", "onnxruntime", "onnx", "matplotlib", "torch_pruning", "transformers", "sklearn"]
    code = textwrap.dedent(f"""\
        import sys
        from edgecompress.cli import main
        for recipe in sys.argv[1:]:
            code = main(["validate", recipe])
            print("IMPORTED", code, sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
        """)
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code, str(bad), str(examples / "digits.yaml")], capture_output=True,
                          text=True, env=environment, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED")]
    assert lines == ["IMPORTED 2 []", "IMPORTED 0 ['torch']"], done.stderr
    assert "amout: unknown field, did you mean 'amount'?" in done.stderr and ": valid: digits-cnn on digits" in done.stdout


def test_model_files_in_a_recipe_are_relative_to_its_folder(tmp_path, monkeypatch, capsys):
    from edgecompress.core.models import DigitsCNN
    from edgecompress.core.models.checkpoint import save_model_file

    folder = tmp_path / "project" / "recipes"
    save_model_file(DigitsCNN(), tmp_path / "project" / "weights.safetensors")
    path = _recipe(folder, "model: digits-cnn\nweights: ../weights.safetensors\nstages:\n  - stage: quantize\n")
    monkeypatch.chdir(tmp_path)  # elsewhere: the path is read from the recipe's folder, not from here
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()

    missing = _recipe(folder, "model: digits-cnn\nweights: weights.safetensors\nstages:\n  - stage: quantize\n", "missing.yaml")
    monkeypatch.chdir(tmp_path / "project")  # here the file exists, relative to the working directory
    assert main(["validate", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"error: recipe: 1 problem(s) in {missing}: weights: 'weights.safetensors' not found: looked for "
        f"{folder / 'weights.safetensors'} (a path in a recipe is relative to the recipe's folder); "
        f"{tmp_path / 'project' / 'weights.safetensors'} exists: write its path relative to {folder}, or an absolute path\n"
    )


QUICK = "model: digits-mlp\ntask: digits\ntrain: {epochs: 1, lr: 0.002}\nstages:\n  - stage: quantize\n    mode: dynamic\n"


def test_run_json_prints_the_metrics_document_quiet_silences_progress_and_verbose_adds_stage_details(tmp_path):
    path = _recipe(tmp_path, QUICK)
    out = tmp_path / "out"
    done = _cli(["run", str(path), "--out", str(out), "--json", "--quiet"])
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("IMPORTED") and done.stderr.count("\n") == 1  # quiet: nothing but the test's own line
    document = json.loads(done.stdout)  # stdout is one JSON document, nothing else
    assert document["command"] == "run" and document["out"] == str(out)
    assert document["metrics"] == json.loads((out / "metrics.json").read_text())
    assert document["report"] == str(out / "report.html") and Path(document["report"]).is_file()
    assert document["metrics"]["final"]["name"] == document["metrics"]["stages"][-1]["name"]

    loud = _cli(["run", str(path), "--out", str(tmp_path / "loud"), "--verbose"])
    assert loud.returncode == 0 and loud.stderr.count("\n") > 1  # without --quiet, progress lines on stderr
    assert "report:" in loud.stdout
    assert "] baseline: 50,610 params (50,610 nonzero), 50,200 MACs, baseline.onnx " in loud.stderr  # and with --verbose, details
    assert "] stage 1/1 (quantize): 50,610 params" in loud.stderr and "; settings: mode dynamic; in metrics.json: " in loud.stderr


@pytest.mark.parametrize("command", ["demo", "run", "fit"])
def test_verbose_is_documented_and_refused_with_quiet(command, tmp_path, capsys):
    assert main([command, "--help"]) == 0
    assert "--verbose" in capsys.readouterr().out
    given = {"run": [str(_recipe(tmp_path, QUICK))], "fit": ["--max-size", "20KB"]}.get(command, [])
    args = [command, *given, "--out", str(tmp_path / "out"), "-q", "-v"]
    assert main(args) == 2
    assert capsys.readouterr().err == "error: --quiet and --verbose: give one of them\n"
    assert not (tmp_path / "out").exists()
