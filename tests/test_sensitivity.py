import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask
from edgecompress.orchestration.curves.sensitivity import layer_sensitivity
from edgecompress.orchestration.executors.local import LocalExecutor
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.engine import prune_model


@pytest.fixture(scope="module")
def sensed(trained_cnn, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("sensitivity")
    return out, layer_sensitivity(trained_cnn, digits, out / "s", levels=(0.5, 0.95), tolerance=1.0)


def test_sensitivity_rows_and_per_layer_amounts(sensed, trained_cnn):
    tmp_path, doc = sensed
    assert len(doc["rows"]) == 4 * 2  # four layers (classifier included) x two levels
    for layer, amount in doc["per_layer"].items():
        safe = [r["level"] for r in doc["rows"] if r["layer"] == layer and r["drop"] <= 1.0]
        assert amount == (max(safe) if safe else 0.0)
    assert doc["scored_on"].startswith("evaluation set")
    saved = json.loads((tmp_path / "s" / "sensitivity.json").read_text())
    assert saved["per_layer"] == doc["per_layer"]
    assert (tmp_path / "s" / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"

    # the suggested stage is a valid prune stage that applies exactly those amounts
    stage = Prune.model_validate(doc["prune_stage"])
    model = prune_model(trained_cnn.__class__(), stage, torch.zeros(1, 1, 8, 8), train=lambda *a, **k: None)
    for layer, amount in doc["per_layer"].items():
        mask = get_mask(getattr(model, layer))
        assert int((mask == 0).sum()) == round(amount * mask.numel())


def test_bad_levels_are_refused(trained_cnn, digits, tmp_path):
    with pytest.raises(UserError, match="--levels"):
        layer_sensitivity(trained_cnn, digits, tmp_path / "s", levels=(0.0,))
    assert not (tmp_path / "s").exists()


class LastFinishesFirst:
    """In-process trials that finish in reverse order, as parallel workers may (no worker start-up cost)."""

    name = "reversed"

    @contextmanager
    def open(self, shared):
        with LocalExecutor().open(shared) as runner:
            yield SimpleNamespace(run=lambda fn, trials: reversed(list(runner.run(fn, trials))))


def test_trials_finishing_in_any_order_give_the_same_numbers(sensed, trained_cnn, digits, tmp_path):
    """Parallel workers (tests/curves/test_executors.py, tests/test_sweep.py) return trials in any order."""
    out, sequential = sensed
    shuffled = layer_sensitivity(trained_cnn, digits, tmp_path / "two", levels=(0.95,), tolerance=1.0, executor=LastFinishesFirst())
    assert shuffled["baseline_score"] == sequential["baseline_score"]
    assert shuffled["rows"] == [r for r in sequential["rows"] if r["level"] == 0.95]
    assert (tmp_path / "two" / "layers" / "conv1-0.95.onnx").read_bytes() == (out / "s" / "layers" / "conv1-0.95.onnx").read_bytes()


def test_killed_sensitivity_resumes_without_rerunning_finished_trials(sensed, trained_cnn, digits, tmp_path, monkeypatch):
    from edgecompress.orchestration.curves import sensitivity as sensitivity_module

    _, reference = sensed
    ran, real = [], sensitivity_module._layer_trial

    def trial_until_killed(shared, trial):
        if len(ran) == limit:
            raise KeyboardInterrupt  # as if the driver were killed during this trial
        ran.append(trial)
        return real(shared, trial)

    monkeypatch.setattr(sensitivity_module, "_layer_trial", trial_until_killed)
    limit = 3
    with pytest.raises(KeyboardInterrupt):
        layer_sensitivity(trained_cnn, digits, tmp_path / "k", levels=(0.5, 0.95), tolerance=1.0)
    assert ran == [(None, 0.0), ("conv1", 0.5), ("conv1", 0.95)]
    assert (tmp_path / "k" / "layers" / "conv1-0.95.json").is_file()
    ran.clear()
    limit = None
    resumed = layer_sensitivity(trained_cnn, digits, tmp_path / "k", levels=(0.5, 0.95), tolerance=1.0, resume=True)
    assert len(ran) == 4 * 2 - 2 and (None, 0.0) not in ran and ("conv1", 0.5) not in ran
    assert resumed == reference
    ran.clear()
    again = layer_sensitivity(trained_cnn, digits, tmp_path / "k", levels=(0.5, 0.95), tolerance=1.0, resume=True)
    assert ran == [] and again == reference  # a finished analysis resumes without a single trial
