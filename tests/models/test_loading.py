import os
import pickle
import textwrap

import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN, load_model


def test_builtin_name_has_a_default_input_shape():
    loaded = load_model("digits-cnn")
    assert isinstance(loaded.module, DigitsCNN)
    assert loaded.default_input_shape == (1, 1, 8, 8)


def test_unknown_name_lists_the_builtins():
    with pytest.raises(UserError, match="unknown model 'nope'.*digits-cnn"):
        load_model("nope")


def _write_factory(tmp_path):
    (tmp_path / "mymodels.py").write_text(
        textwrap.dedent(
            """
            from torch import nn
            def tiny():
                return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
            def not_a_model():
                return 42
            """
        )
    )
    return tmp_path / "mymodels.py"


def test_module_function_and_file_path_function(tmp_path, monkeypatch):
    path = _write_factory(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_model("mymodels:tiny").module[1].in_features == 64
    assert load_model(f"{path}:tiny").module[1].out_features == 10


def test_missing_module_function_and_non_module_are_user_errors(tmp_path, monkeypatch):
    path = _write_factory(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="cannot import module 'no_such_module'"):
        load_model("no_such_module:make")
    with pytest.raises(UserError, match="has no attribute 'missing'"):
        load_model("mymodels:missing")
    with pytest.raises(UserError, match="returned int, not a torch.nn.Module"):
        load_model(f"{path}:not_a_model")


def test_weights_load_into_architecture_and_mismatch_is_reported(tmp_path):
    model = DigitsCNN()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    loaded = load_model("digits-cnn", weights=str(tmp_path / "w.pt"))
    assert torch.equal(loaded.module.fc1.weight, model.fc1.weight)
    assert loaded.saved_file == tmp_path / "w.pt"
    with pytest.raises(UserError, match="does not match the architecture"):
        load_model("digits-mlp", weights=str(tmp_path / "w.pt"))


def test_safetensors_weights(tmp_path):
    from safetensors.torch import save_file

    model = DigitsCNN()
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    loaded = load_model("digits-cnn", weights=str(tmp_path / "w.safetensors"))
    assert torch.equal(loaded.module.conv2.weight, model.conv2.weight)


class _Exploit:
    """Unpickling this runs a shell command: exactly what a hostile model file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_its_command_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    with open(evil, "wb") as f:
        pickle.dump({"weight": _Exploit(marker)}, f)
    with pytest.raises(UserError, match="pickled Python objects.*--trust-pickle"):
        load_model(str(evil))
    with pytest.raises(UserError, match="pickled Python objects"):
        load_model("digits-cnn", weights=str(evil))
    assert not marker.exists()


def test_whole_pickled_module_loads_only_when_trusted(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(DigitsCNN(), path)
    with pytest.raises(UserError, match="--trust-pickle"):
        load_model(str(path))
    loaded = load_model(str(path), trust_pickle=True)
    assert isinstance(loaded.module, DigitsCNN) and loaded.saved_file == path


def test_state_dict_file_alone_asks_for_the_architecture(tmp_path):
    torch.save(DigitsCNN().state_dict(), tmp_path / "w.pt")
    with pytest.raises(UserError, match="only weights.*--weights"):
        load_model(str(tmp_path / "w.pt"))
