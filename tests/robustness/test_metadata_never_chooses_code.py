"""A weights file's metadata may name a built-in architecture, never code, on every loading path.

The payload is real: `evil.py` (and the module `evilmod`) write a marker file when imported, as a model folder
from the internet could ship beside its weights. The positive controls (`--arch`, `--trust-code`, a recipe's
own `model:`) show the payload does run when the user names it, so "the marker does not exist" proves refusal.
"""

from __future__ import annotations

import os
import textwrap

import pytest
import yaml

from benchmarks.fuzz import _tiny_onnx
from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN, load_model
from edgecompress.core.models.checkpoint import save_model_file
from edgecompress.orchestration.pipeline.checkpoints import load_checkpoint, save_checkpoint
from edgecompress.orchestration.recipe import load_recipe
from edgecompress.orchestration.recipe.run import resolve_recipe

PAYLOAD = """
import pathlib
pathlib.Path({marker!r}).write_text("the file's code ran")
from torch import nn
def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
"""


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A folder as a hub ships it: model.safetensors naming `evil.py:build`, evil.py beside it; cwd is the folder."""
    folder = tmp_path / "downloaded"
    folder.mkdir()
    marker = tmp_path / "pwned"
    for name in ("evil.py", "evilmod.py"):
        (folder / name).write_text(textwrap.dedent(PAYLOAD.format(marker=str(marker))))
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    save_model_file(model, folder / "model.safetensors", arch="evil.py:build")
    save_model_file(model, folder / "module.safetensors", arch="evilmod:build")
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(__import__("sys").modules, "evilmod", raising=False)
    return folder, marker


def _one_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("file, spec", [("model.safetensors", "evil.py:build"), ("module.safetensors", "evilmod:build")])
def test_inspect_refuses_a_file_whose_metadata_names_code(file, spec, hostile, capsys):
    folder, marker = hostile
    out = folder / "inspect-out"
    line = _one_line(main(["inspect", file, "--input-shape", "1,4", "--out", str(out)]), capsys.readouterr().err)
    assert f"names the architecture '{spec}' in its metadata" in line and "--arch" in line and "--trust-code" in line
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("consent", [["--arch", "evil.py:build"], ["--trust-code"]])
def test_inspect_loads_it_when_the_user_names_or_trusts_the_code(consent, hostile, capsys):
    folder, marker = hostile
    assert main(["inspect", "model.safetensors", "--input-shape", "1,4", "--out", str(folder / "out"), *consent]) == 0
    assert marker.exists()  # the payload is real: with consent it runs


def test_the_api_refuses_it_and_loads_it_with_arch_or_trust_code(hostile):
    folder, marker = hostile
    with pytest.raises(UserError, match=r"names the architecture 'evil.py:build'.*--trust-code"):
        load_model("model.safetensors")
    assert not marker.exists()
    assert load_model("model.safetensors", trust_code=True).arch == "evil.py:build"
    assert marker.exists()
    marker.unlink()
    assert load_model("model.safetensors", arch="evilmod:build").module[1].out_features == 2
    assert marker.exists()


def test_a_builtin_architecture_in_metadata_needs_no_flag(tmp_path):
    save_model_file(DigitsCNN(), tmp_path / "cnn.safetensors", arch="digits-cnn")
    loaded = load_model(str(tmp_path / "cnn.safetensors"))
    assert isinstance(loaded.module, DigitsCNN) and loaded.arch == "digits-cnn"


def _recipe(folder, **fields) -> str:
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({**fields, "stages": [{"stage": "quantize"}]}))
    return str(path)


def test_run_and_every_recipe_command_refuse_it(hostile, capsys):
    folder, marker = hostile
    recipe = _recipe(folder, model="model.safetensors")
    for command in (["run", recipe], ["sweep", "--recipe", recipe], ["sensitivity", "--recipe", recipe],
                    ["fit", "--recipe", recipe, "--max-size", "20KB"]):
        out = folder / f"{command[0]}-out"
        line = _one_line(main([*command, "--out", str(out)]), capsys.readouterr().err)
        assert "names the architecture 'evil.py:build'" in line, command
        assert not out.exists() and not marker.exists(), command


def test_a_recipe_naming_the_code_itself_is_consent(hostile):
    """`model: evil.py:build` with `weights: model.safetensors`: the user wrote the spec; the metadata is unused."""
    folder, marker = hostile
    loaded, _ = resolve_recipe(load_recipe(_recipe(folder, model="evil.py:build", weights="model.safetensors")))
    assert loaded.arch == f"{(folder / 'evil.py').resolve()}:build" and marker.exists()  # the file beside the recipe


def test_run_with_trust_code_loads_it(hostile):
    folder, marker = hostile
    loaded, _ = resolve_recipe(load_recipe(_recipe(folder, model="model.safetensors")), trust_code=True)
    assert loaded.arch == "evil.py:build" and marker.exists()


def test_a_checkpoint_naming_code_is_loaded_into_the_runs_own_architecture(hostile, tmp_path):
    """--resume rebuilds each checkpoint into the architecture the user's recipe named; a checkpoint swapped for
    one whose metadata names evil.py is never asked what to build."""
    folder, marker = hostile
    run = tmp_path / "run"
    model = DigitsCNN()
    save_checkpoint(run, "01-prune", "fp", {"artifact": None}, model)
    save_model_file(model, run / "checkpoints" / "01-prune.safetensors", arch="evil.py:build", keep_masks=True)
    _, resumed = load_checkpoint(run, "01-prune", "fp", DigitsCNN())
    assert isinstance(resumed, DigitsCNN) and not marker.exists()


def test_a_checkpoint_record_cannot_point_outside_the_run(tmp_path):
    """A record naming `../elsewhere.onnx` (or a link out) counts as missing: the stage is computed again."""
    run, elsewhere = tmp_path / "run", _tiny_onnx(tmp_path / "elsewhere.onnx")
    size = elsewhere.stat().st_size
    save_checkpoint(run, "01-prune", "fp", {"artifact": "inside.onnx", "artifact_bytes": size}, None)
    _tiny_onnx(run / "inside.onnx")
    assert load_checkpoint(run, "01-prune", "fp", DigitsCNN()) is not None  # the genuine record resumes
    for artifact in ("../elsewhere.onnx", str(elsewhere), "linked.onnx"):
        if artifact == "linked.onnx":
            os.symlink(elsewhere, run / "linked.onnx")
        save_checkpoint(run, "01-prune", "fp", {"artifact": artifact, "artifact_bytes": size}, None)
        assert load_checkpoint(run, "01-prune", "fp", DigitsCNN()) is None, artifact


@pytest.mark.parametrize("key, value, expected", [
    ("edgecompress.layer_sizes", "{not json", "malformed edgecompress.layer_sizes"),
    ("edgecompress.layer_sizes", '{"fc1": {"forward": 3}}', "'forward' = 3"),
    ("edgecompress.layer_sizes", '{"fc1": {"in_features": -4}}', "malformed edgecompress.layer_sizes"),
    ("edgecompress.layer_sizes", "[1, 2]", "malformed"),
    # the original positions of a shortened ModuleList's entries: increasing, of a list the architecture has
    ("edgecompress.kept_entries", "{not json", "malformed edgecompress.kept_entries"),
    ("edgecompress.kept_entries", '{"fc1": [0]}', "'fc1' keeps entries [0]"),
    ("edgecompress.kept_entries", '{"": [0, 0]}', "cannot give"),
    ("edgecompress.kept_entries", '{"x": [-1]}', "malformed edgecompress.kept_entries"),
])
def test_malformed_structure_metadata_is_an_input_error(key, value, expected, tmp_path, capsys):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in DigitsCNN().state_dict().items()}
    path = tmp_path / "w.safetensors"
    save_file(state, str(path), metadata={key: value, "edgecompress.arch": "digits-cnn"})
    line = _one_line(main(["inspect", str(path), "--out", str(tmp_path / "out")]), capsys.readouterr().err)
    assert expected in line, line
