import json

import pytest

import edgecompress as ec
from edgecompress.errors import UserError
from edgecompress.fit import fit

CANDIDATES = [
    ("int8", [ec.Quantize()]),
    ("channels-50%, int8", [ec.Prune(pattern="channel", amount=0.5), ec.Finetune(epochs=4), ec.Quantize()]),
    ("channels-75%, int8", [ec.Prune(pattern="channel", amount=0.75), ec.Finetune(epochs=4), ec.Quantize()]),
]


@pytest.fixture(scope="module")
def fitted(trained_cnn, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    result = fit(trained_cnn, digits, out, max_bytes=30_000, max_drop=5.0, candidates=CANDIDATES)
    return out, result


def test_smallest_candidate_within_both_targets_is_chosen(fitted):
    out, result = fitted
    fitting = [c for c in result.candidates if c.size_bytes <= 30_000 and c.drop <= 5.0]
    assert result.met_targets and result.chosen == min(fitting, key=lambda c: c.size_bytes)
    assert result.chosen.size_bytes == (out / result.chosen.directory / "final.ecz").stat().st_size
    doc = json.loads((out / "fit.json").read_text())
    assert doc["chosen"]["label"] == result.chosen.label and len(doc["candidates"]) == 3
    assert "optimistic" in doc["message"]  # no validation data: chosen on the evaluation set, and it says so
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_pareto_front_has_no_dominated_candidate(fitted):
    _, result = fitted
    front = [c for c in result.candidates if c.label in result.pareto]
    for c in front:
        assert not any(o.size_bytes < c.size_bytes and o.drop < c.drop for o in result.candidates)


def test_impossible_target_returns_the_best_found_with_a_message(fitted):
    from edgecompress.fit import _choose

    _, result = fitted
    honest = _choose(result.candidates, max_bytes=100, max_drop=0.0, size_of="packed", selected_on_eval=False)
    assert not honest.met_targets and "no candidate meets" in honest.message
    assert honest.chosen == min(result.candidates, key=lambda c: c.size_bytes)


def test_bad_targets_are_refused(trained_cnn, digits, tmp_path):
    with pytest.raises(UserError, match="--size-of"):
        fit(trained_cnn, digits, tmp_path / "f", 1000, 1.0, size_of="zip")
    with pytest.raises(UserError, match="--max-drop"):
        fit(trained_cnn, digits, tmp_path / "f", 1000, -1.0)
