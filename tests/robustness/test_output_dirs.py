"""Output directories: a user's files and a finished run are never lost, --force is explicit, and the files of
an old run never mix with a new run's (docs/security.md, "Output directories")."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import edgecompress as ec
from edgecompress.cli import main
from edgecompress.orchestration.pipeline import run as pipeline_run
from edgecompress.storage import files
from edgecompress.storage.files import atomic_write_text
from edgecompress.storage.rundir import owned_run_dir
from tests.robustness.ctrl_c import sigint_as_in_a_terminal

QUICK = "model: digits-cnn\nstages:\n  - stage: quantize\n"
PRUNED = "model: digits-cnn\nstages:\n  - {stage: prune, pattern: unstructured, amount: 0.5}\n  - stage: quantize\n"
TRAINED = "model: digits-cnn\ntrain: {epochs: 3}\nstages:\n  - {stage: prune, pattern: unstructured, amount: 0.5}\n  - {stage: finetune, epochs: 2}\n  - stage: quantize\n"


def _recipe(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _finished_run(tmp_path_factory, text: str) -> tuple[Path, Path]:
    """(a finished `run` of the recipe `text`, the recipe)."""
    root = tmp_path_factory.mktemp("finished")
    recipe = _recipe(root, "recipe.yaml", text)
    assert main(["run", str(recipe), "--out", str(root / "run")]) == 0
    return root / "run", recipe


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished `run` of the quick recipe (no training), copied by each test that changes it."""
    return _finished_run(tmp_path_factory, QUICK)


@pytest.fixture
def run_copy(finished, tmp_path):
    shutil.copytree(finished[0], tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(torch.optim.Adam, "step", refuse)


@pytest.mark.parametrize("command", ["run", "demo"])
def test_a_second_run_on_a_finished_directory_is_refused_naming_resume_and_force(command, finished, run_copy, no_training, capsys):
    before = _snapshot(run_copy)
    args = ["run", str(finished[1])] if command == "run" else ["demo"]
    assert main([*args, "--out", str(run_copy)]) == 2
    assert capsys.readouterr().err == f"error: --out: {run_copy} holds a finished run; pass --resume to reuse it or --force to replace it\n"
    assert _snapshot(run_copy) == before


@pytest.mark.parametrize(
    "args",
    [["sweep"], ["sensitivity"], ["fit", "--max-size", "10KB"], ["inspect", "digits-cnn"]],
)
def test_no_other_command_writes_into_a_finished_run(args, run_copy, no_training, capsys):
    before = _snapshot(run_copy)
    assert main([*args, "--out", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out: {run_copy} holds a finished run; pass --force to replace it, or choose another directory\n"
    assert _snapshot(run_copy) == before


def test_a_finished_sweep_is_refused_naming_resume_and_force(tmp_path, no_training, capsys):
    out = tmp_path / "sweep"
    with owned_run_dir(out, "sweep") as owned:  # what a finished sweep leaves
        atomic_write_text(owned / "sweep.json", "{}")
    assert main(["sweep", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: --out: {out} holds the finished output of `edgecompress sweep`; pass --resume to reuse it or --force to replace it\n"
    )


def test_users_files_survive_a_forced_rerun_and_the_old_runs_files_go(finished, run_copy, tmp_path):
    mine = {"checkpoints/epoch_099.pt": b"my weights", "stages/notes.txt": b"my notes", "notes.txt": b"top"}
    for name, data in mine.items():
        (run_copy / name).parent.mkdir(exist_ok=True)
        (run_copy / name).write_bytes(data)
    recipe = _recipe(tmp_path / "r", "pruned.yaml", PRUNED)
    assert main(["run", str(recipe), "--out", str(run_copy), "--force"]) == 0
    for name, data in mine.items():
        assert (run_copy / name).read_bytes() == data, name
    assert not (run_copy / "checkpoints" / "01-quantize.json").exists()  # the old run's, replaced as a whole
    assert (run_copy / "checkpoints" / "01-prune.json").is_file() and (run_copy / "stages" / "01-prune.onnx").is_file()
    listed = json.loads((run_copy / ".edgecompress" / "manifest.json").read_text())
    assert listed["finished"] and not set(mine) & set(listed["files"])


def test_a_directory_holding_other_files_is_refused_untouched_then_forced(finished, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "report.html").write_text("my own report")
    assert main(["run", str(finished[1]), "--out", str(out)]) == 2
    assert "is not empty and holds no edgecompress output" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.html"]
    assert main(["run", str(finished[1]), "--out", str(out), "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "final.onnx").is_file()
    assert (out / "report.html").read_text() != "my own report"  # --force: a file of the same name is replaced


def test_inspect_replaces_its_own_report_but_nothing_else(tmp_path, capsys):
    out = tmp_path / "inspect"
    assert main(["inspect", "digits-cnn", "--out", str(out)]) == 0
    assert main(["inspect", "digits-mlp", "--out", str(out)]) == 0
    assert json.loads((out / "layers.json").read_text())["layers"][0]["name"] == "fc1"
    (out / "layers.json").write_text("edited")
    capsys.readouterr()
    assert main(["inspect", "digits-cnn", "--out", str(out)]) == 2
    assert "layers.json was not written by edgecompress" in capsys.readouterr().err  # an edit is the user's
    assert (out / "layers.json").read_text() == "edited"


def test_pack_and_unpack_replace_an_existing_file_only_with_force(finished, tmp_path, capsys):
    onnx_file = shutil.copy(finished[0] / "final.onnx", tmp_path / "model.onnx")
    assert main(["pack", str(onnx_file)]) == 0
    packed = tmp_path / "model.ecz"
    before = packed.read_bytes()
    assert main(["pack", str(onnx_file)]) == 2
    assert f"output: {packed} already exists; pass --force to replace it" in capsys.readouterr().err
    assert main(["unpack", str(packed), "--out", str(packed)]) == 2
    assert "is the input file itself" in capsys.readouterr().err and packed.read_bytes() == before
    assert main(["unpack", str(packed)]) == 2
    assert main(["unpack", str(packed), "--force"]) == 0 and onnx_file.read_bytes() == (finished[0] / "final.onnx").read_bytes()
    assert main(["pack", str(onnx_file), "--force"]) == 0 and packed.read_bytes() == before


def test_a_failure_inside_compress_leaves_no_output_directory(trained_cnn, digits, tmp_path, monkeypatch):
    def export_fails(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(pipeline_run, "export_model", export_fails)
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new" / "run", tmp_path / "empty"):
        with pytest.raises(RuntimeError, match="exporter crashed"):
            ec.compress(trained_cnn, digits, [ec.Quantize()], out)
    assert not (tmp_path / "new").exists()  # nor the parent it created for it
    assert list((tmp_path / "empty").iterdir()) == []  # an empty directory stays empty: no state folder either


def test_temporaries_on_another_file_system_get_normal_permissions(tmp_path, monkeypatch):
    real_replace = os.replace

    def across_file_systems(source, target):  # a temporary not beside its target is on "another file system"
        if Path(source).parent != Path(target).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", across_file_systems)
    with owned_run_dir(tmp_path / "run", "run") as out:
        atomic_write_text(out / "metrics.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "run" / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".part")] == []


def test_resume_with_a_changed_recipe_leaves_no_stale_file(trained_cnn, digits, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline_run, "write_run_outputs", lambda *args: None)  # the report is not what is tested
    out = tmp_path / "run"
    ec.compress(trained_cnn, digits, [ec.Prune(pattern="unstructured", amount=0.5), ec.Finetune(epochs=1), ec.Quantize()], out)
    assert (out / "stages" / "02-finetune.onnx").is_file()
    ec.compress(trained_cnn, digits, [ec.Prune(pattern="unstructured", amount=0.5), ec.Quantize()], out, resume=True)
    left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".edgecompress" not in p.parts}
    assert {p for p in left if p.startswith(("stages/", "checkpoints/"))} == {
        "stages/01-prune.onnx", "checkpoints/00-baseline.json", "checkpoints/01-prune.json",
        "checkpoints/01-prune.safetensors", "checkpoints/02-quantize.json",
    }
    recorded = json.loads((out / ".edgecompress" / "manifest.json").read_text())["files"]
    assert set(recorded) == left


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    """Until the run writes `path` (an event, not a number of seconds); the timeout only guards a hang."""
    deadline = time.monotonic() + 600
    while not path.exists():
        assert process.poll() is None, "the run ended before the event"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def trained_clean(tmp_path_factory):
    """An uninterrupted run of the recipe with training, to compare killed-and-resumed ones with."""
    return _finished_run(tmp_path_factory, TRAINED)


# kill -9 then --resume: tests/recipe/test_resume.py; SIGTERM ends the process as kill -9 does (no handler runs)
def test_ctrl_c_then_resume_gives_byte_identical_artifacts(trained_clean, tmp_path, capsys):
    clean, recipe = trained_clean
    out = tmp_path / "run"
    command = ["run", str(recipe), "--out", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "edgecompress.cli", *command], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, preexec_fn=sigint_as_in_a_terminal)
    _wait_for(out / "checkpoints" / "01-prune.json", process)  # interrupted while fine-tuning
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    # 130 as a shell reports it: exit(130), or death by SIGINT (-2 here), see test_exit_codes.py
    assert process.returncode in (130, -signal.SIGINT) and err.rstrip().endswith("error: interrupted"), err[-300:]
    assert sorted(os.listdir(tmp_path)) == ["run"]  # nothing beside the directory
    assert main(command) == 2
    assert "holds an unfinished (interrupted or failed) run; pass --resume to continue it" in capsys.readouterr().err
    assert main([*command, "--resume"]) == 0
    for name in ("final.onnx", "final.ecz", "baseline.onnx", "stages/01-prune.onnx", "model.safetensors"):
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name
    assert not (out / ".edgecompress" / "tmp").exists() and sorted(os.listdir(tmp_path)) == ["run"]


def test_a_forced_replacement_killed_in_training_leaves_nothing_of_the_old_run(run_copy, tmp_path):
    recipe = _recipe(tmp_path / "r", "trained.yaml", TRAINED.replace("epochs: 3", "epochs: 400"))
    command = [sys.executable, "-m", "edgecompress.cli", "run", str(recipe), "--out", str(run_copy)]
    process = subprocess.Popen([*command, "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = run_copy / ".edgecompress" / "manifest.json"
    deadline = time.monotonic() + 600
    while (run_copy / "final.onnx").exists() or json.loads(manifest.read_text())["files"]:  # the old run is gone
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert not [p for p in run_copy.rglob("*") if p.is_file() and ".edgecompress" not in p.parts]

