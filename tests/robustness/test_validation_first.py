"""Input that will be refused is refused first: one line, exit code 2, before any training or any file is
written, in well under 2 seconds of CPU (the command line's own imports aside).

Each case below once ran minutes of work first, or ended with exit code 1 and a traceback-shaped message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.fuzz import own_cpu_seconds
from edgecompress.cli import main
from edgecompress.storage.rundir import _Owned

LONG = "n" * 300
RECIPE = "model: digits-mlp\ntask: digits\ntrain: {epochs: 40}\n"


class WorkStarted(BaseException):
    """Raised where work begins: training steps, or taking the output directory (after every check)."""


@pytest.fixture
def no_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise WorkStarted

    monkeypatch.setattr(torch.optim.Adam, "step", refuse)
    monkeypatch.setattr(_Owned, "locked", refuse)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def inputs(tmp_path):
    """Files the cases point at, in a folder of their own (the outputs go to tmp_path/out)."""
    folder = tmp_path / "in"
    folder.mkdir()
    recipes = {
        "valid": "model: digits-cnn\nstages:\n  - stage: quantize\n",
        "int4_block_17": RECIPE + "stages:\n  - {stage: quantize, mode: int4, block_size: 17}\n",
        "seed_2_64": RECIPE + "seed: 18446744073709551615\nstages:\n  - stage: quantize\n",
        "seed_1e23": RECIPE + "seed: 100000000000000000000000\nstages:\n  - stage: quantize\n",
        "weight_decay_inf": RECIPE + "stages:\n  - {stage: finetune, weight_decay: .inf}\n  - stage: quantize\n",
        "temperature_tiny": RECIPE + "stages:\n  - {stage: finetune, distill: 0.5, temperature: 1.0e-300}\n  - stage: quantize\n",
        "spec_os_system": "model: os:system\nstages:\n  - stage: quantize\n",
        "spec_dots": "model: '..:f'\nstages:\n  - stage: quantize\n",
        "spec_relative": "model: .models:flat\nstages:\n  - stage: quantize\n",
        "task_os_system": "model: digits-cnn\ntask: os:system\nstages:\n  - stage: quantize\n",
        "weights_dir": f"model: digits-cnn\nweights: {folder}\nstages:\n  - stage: quantize\n",
        "weights_null": "model: digits-cnn\nweights: /dev/null\nstages:\n  - stage: quantize\n",
    }
    for name, text in recipes.items():
        (folder / f"{name}.yaml").write_text(text)
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "model.ecz").write_bytes(b"ecz")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "a_file").write_text("x")
    (folder / "folder").mkdir()
    return folder


DIGITS_400 = "9" * 400
CASES = {
    "sweep --methods bogus": (["sweep", "--methods", "bogus"], "--methods: unknown method 'bogus'"),
    "sweep --methods ''": (["sweep", "--methods", ""], "--methods: give at least one"),
    "sweep --levels 1.5": (["sweep", "--levels", "1.5"], "--levels: each level must be between 0 and 1"),
    "sweep --levels nan": (["sweep", "--levels", "nan"], "--levels: each level must be between 0 and 1"),
    "sweep --levels ''": (["sweep", "--levels", ""], "--levels: give at least one level"),
    "sweep --tolerance nan": (["sweep", "--tolerance", "nan"], "--tolerance"),
    "sensitivity --levels 1.5": (["sensitivity", "--levels", "1.5"], "--levels: each level must be between 0 and 1"),
    "sensitivity --levels nan": (["sensitivity", "--levels", "nan"], "--levels: each level must be between 0 and 1"),
    "sensitivity --levels ''": (["sensitivity", "--levels", ""], "--levels: give at least one level"),
    "quantize int4 block_size 17": (["run", "{in}/int4_block_17.yaml"], "block_size: must be a power of two"),
    "seed 2**64-1": (["run", "{in}/seed_2_64.yaml"], "seed: Input should be less than or equal to 4294967295"),
    "seed 10**23": (["run", "{in}/seed_1e23.yaml"], "seed: Input should be less than or equal to 4294967295"),
    "--seed 10**23": (["demo", "--seed", "1" + "0" * 23], "--seed"),
    "sweep --seed 10**23": (["sweep", "--seed", "1" + "0" * 23], "--seed"),
    "finetune weight_decay .inf": (["run", "{in}/weight_decay_inf.yaml"], "weight_decay: Input should be a finite number"),
    "finetune temperature 1e-300": (["run", "{in}/temperature_tiny.yaml"], "temperature: Input should be greater than or equal to 0.1"),
    "inspect --input-shape 1,1,65536,65536": (["inspect", "digits-cnn", "--input-shape", "1,1,65536,65536"], "4,294,967,296 elements"),
    "inspect --input-shape 400 digits": (["inspect", "digits-cnn", "--input-shape", f"1,{DIGITS_400}"], "--input-shape: cannot parse"),
    "inspect --target-size 400 digits": (["inspect", "digits-cnn", "--target-size", DIGITS_400 + "B"], "--target-size: size must be positive and at most 1 PB"),
    "fit --max-size 400 digits": (["fit", "--max-size", DIGITS_400 + "KB"], "--max-size: size must be positive and at most 1 PB"),
    "fit --max-latency 400 digits": (["fit", "--max-latency", DIGITS_400], "--max-latency: cannot use"),
    "fit --max-drop nan": (["fit", "--max-size", "10KB", "--max-drop", "nan"], "--max-drop: must be >= 0 and finite"),
    "dtypes --int-range 1e-320": (["dtypes", "--int-range", "1e-320"], "--int-range: must be a finite number of at least"),
    "inspect os:system": (["inspect", "os:system"], "model: 'os:system' needs arguments"),
    "inspect ..:f": (["inspect", "..:f"], "is not an absolute module name"),
    "inspect .models:flat": (["inspect", ".models:flat"], "is not an absolute module name"),
    "recipe model os:system": (["run", "{in}/spec_os_system.yaml"], "model: 'os:system' needs arguments"),
    "recipe model ..:f": (["run", "{in}/spec_dots.yaml"], "is not an absolute module name"),
    "recipe model .models:flat": (["run", "{in}/spec_relative.yaml"], "is not an absolute module name"),
    "recipe task os:system": (["run", "{in}/task_os_system.yaml"], "task: 'os:system' needs arguments"),
    "run a long recipe name": (["run", f"{{in}}/{LONG}.yaml"], "file names may have at most 255"),
    "run --out a long name": (["run", "{in}/valid.yaml", "--out", f"{{in}}/{LONG}"], "--out: the name"),
    "demo --out a long name": (["demo", "--out", f"{{in}}/{LONG}"], "--out: the name"),
    "inspect a long file name": (["inspect", f"{{in}}/{LONG}.pt"], "model: the name"),
    "inspect --weights a long name": (["inspect", "digits-cnn", "--weights", f"{{in}}/{LONG}.pt"], "--weights: the name"),
    "pack a long name": (["pack", f"{{in}}/{LONG}.onnx"], "onnx_file: the name"),
    "pack --out a long name": (["pack", "{in}/model.onnx", "--out", f"{{in}}/{LONG}.ecz"], "--out: the name"),
    "pack --out DIR": (["pack", "{in}/model.onnx", "--out", "{in}/folder"], "--out: {in}/folder is a directory"),
    "unpack --out DIR": (["unpack", "{in}/model.ecz", "--out", "{in}/folder"], "--out: {in}/folder is a directory"),
    "unpack onto its input": (["unpack", "{in}/model.ecz", "--out", "{in}/model.ecz"], "is the input file itself"),
    "pack onto an existing file": (["pack", "{in}/model.onnx", "--out", "{in}/model.ecz"], "already exists; pass --force"),
    "unpack onto an existing file": (["unpack", "{in}/model.ecz", "--out", "{in}/model.onnx"], "already exists; pass --force"),
    "pack --out FILE/x": (["pack", "{in}/model.onnx", "--out", "{in}/a_file/x.ecz"], "a_file is a file, so"),
    "unpack --out FILE/x": (["unpack", "{in}/model.ecz", "--out", "{in}/a_file/x.onnx"], "a_file is a file, so"),
    "run --out FILE/x": (["run", "{in}/valid.yaml", "--out", "{in}/a_file/x"], "a_file is a file, so"),
    "demo --out FILE/x": (["demo", "--out", "{in}/a_file/x"], "a_file is a file, so"),
    "inspect --out FILE/x": (["inspect", "digits-cnn", "--out", "{in}/a_file/x"], "a_file is a file, so"),
    "embed --out FILE/x": (["embed", "{in}/folder", "hi", "--out", "{in}/a_file/x.npy"], "a_file is a file, so"),
    "embed --file binary": (["embed", "{in}/folder", "--file", "{in}/binary.txt"], "--file: {in}/binary.txt is not UTF-8 text"),
    "run DIR": (["run", "{in}/folder"], "recipe: {in}/folder is a directory, not a file"),
    "recipe weights DIR": (["run", "{in}/weights_dir.yaml"], "--weights: {in} is a directory, not a file"),
    "recipe weights /dev/null": (["run", "{in}/weights_null.yaml"], "--weights: /dev/null is not a regular file (it is a device)"),
    "inspect --weights DIR": (["inspect", "digits-cnn", "--weights", "{in}/folder"], "--weights: {in}/folder is a directory, not a file"),
    "inspect --weights /dev/null": (["inspect", "digits-cnn", "--weights", "/dev/null"], "--weights: /dev/null is not a regular file"),
    "--resume and --force": (["demo", "--resume", "--force"], "--resume and --force: give one of them"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_input_that_will_be_refused_is_refused_first(name, inputs, tmp_path, no_work, capsys):
    args, expected = CASES[name]
    args = [a.replace("{in}", str(inputs)) for a in args]
    if "--out" not in args and args[0] != "dtypes":
        args += ["--out", str(tmp_path / "out")]
    before = _files(tmp_path)
    code, escaped, cpu = own_cpu_seconds(lambda: main(args))
    if escaped is not None:
        raise escaped
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert expected.replace("{in}", str(inputs)) in err, err
    assert "Traceback" not in err and len(err) < 600
    assert _files(tmp_path) == before, "something was written"
    assert cpu < 2.0, f"{cpu:.2f} s of CPU before refusing"
