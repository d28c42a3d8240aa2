"""A hostile file (a pickle whose load runs a command) is refused on every loading path, and never runs.

Each test builds a real exploit: unpickling it calls `os.system("touch <marker>")`. The positive control
(`--trust-pickle`) shows the exploit does run when trusted, so "the marker does not exist" proves refusal.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN, load_model
from edgecompress.core.models.checkpoint import save_model_file
from edgecompress.orchestration.pipeline.checkpoints import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


class _Exploit:
    """Unpickling this runs a shell command: exactly what a hostile model file does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _raw_pickle(path: Path, marker: Path) -> Path:
    with open(path, "wb") as handle:
        pickle.dump({"fc1.weight": _Exploit(marker)}, handle)
    return path


def _torch_zip(path: Path, marker: Path) -> Path:
    """The same payload inside PyTorch's own zip format (what `torch.save` writes)."""
    torch.save({"fc1.weight": _Exploit(marker)}, path)
    return path


HOSTILE = [(_raw_pickle, ".pt"), (_torch_zip, ".pth"), (_raw_pickle, ".bin"), (_torch_zip, ".ckpt"), (_raw_pickle, ".safetensors"), (_raw_pickle, "")]


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "the hostile file's command ran"


def test_the_exploit_is_real_when_the_user_trusts_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = _torch_zip(tmp_path / "model.pt", marker)
    with pytest.raises(UserError, match="holds a dict, not an nn.Module"):
        load_model(str(evil), trust_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("write, suffix", HOSTILE)
def test_hostile_model_and_weight_files_are_refused_by_the_api(write, suffix, tmp_path, marker):
    evil = write(tmp_path / f"model{suffix}", marker)
    with pytest.raises(UserError, match=r"pickled Python objects.*--trust-pickle|not a valid safetensors file|cannot read"):
        load_model(str(evil))
    with pytest.raises(UserError, match=r"--weights: .*(pickled Python objects|not a valid safetensors file|cannot read)"):
        load_model("digits-cnn", weights=str(evil))


def _one_line_refusal(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    ours = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and expected in ours[0] and "Traceback" not in err, err


@pytest.mark.parametrize("write", [_raw_pickle, _torch_zip])
def test_hostile_files_are_refused_by_every_command(write, tmp_path, marker, capsys):
    evil = write(tmp_path / "model.pt", marker)
    out = tmp_path / "out"
    for args in (["inspect", str(evil)], ["inspect", "digits-cnn", "--weights", str(evil)]):
        _one_line_refusal(main([*args, "--out", str(out)]), capsys.readouterr().err, "pickled Python objects")
    for fields in (f"model: {evil}\n", f"model: digits-cnn\nweights: {evil}\n"):
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(fields + "stages:\n  - stage: quantize\n")
        _one_line_refusal(main(["run", str(recipe), "--out", str(out)]), capsys.readouterr().err, "pickled Python objects")
    assert not out.exists()


def test_hostile_encoder_directory_is_refused(tmp_path, marker, capsys):
    """A Hugging Face folder with only a pickled pytorch_model.bin: transformers is told to load safetensors only."""
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1,
                                                    "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 100}))
    _torch_zip(folder / "pytorch_model.bin", marker)
    code = main(["encoder", "int8", "--model-dir", str(folder), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err  # (transformers may first import torchao, which prints its own lines)
    _one_line_refusal(code, err, f"model_dir: cannot load {folder}: Error no file named model.safetensors")


def test_hostile_checkpoint_is_never_unpickled_and_resume_recomputes_it(tmp_path, marker):
    """A stage checkpoint swapped for a pickle (same name, same JSON record) counts as missing: recomputed."""
    model = DigitsCNN()
    save_checkpoint(tmp_path, "01-prune", "fingerprint", {"artifact": None}, model)
    record, resumed = load_checkpoint(tmp_path, "01-prune", "fingerprint", DigitsCNN())
    assert torch.equal(resumed.fc1.weight, model.fc1.weight)  # the genuine checkpoint resumes
    _torch_zip(tmp_path / "checkpoints" / "01-prune.safetensors", marker)
    assert load_checkpoint(tmp_path, "01-prune", "fingerprint", DigitsCNN()) is None
    _raw_pickle(tmp_path / "checkpoints" / "01-prune.safetensors", marker)
    assert load_checkpoint(tmp_path, "01-prune", "fingerprint", DigitsCNN()) is None


def test_hostile_model_safetensors_output_is_refused_when_loaded_back(tmp_path, marker):
    """`model.safetensors` is what a run hands on; a swapped-in pickle under that name is not unpickled."""
    evil = _raw_pickle(tmp_path / "model.safetensors", marker)
    with pytest.raises(UserError, match="not a valid safetensors file"):
        load_model(str(evil))
    save_model_file(DigitsCNN(), evil, arch="digits-cnn")  # the genuine file under the same name loads
    assert isinstance(load_model(str(evil)).module, DigitsCNN)
