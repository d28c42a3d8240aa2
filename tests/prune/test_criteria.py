import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask
from edgecompress.core.models import DigitsCNN
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.criteria import Movement, Taylor, Wanda
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.scoring import ScoreContext


def test_wanda_scores_weight_times_input_feature_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    x = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    ctx = ScoreContext(model, batches=[(x, None)], max_batches=4)
    scores = Wanda().scores({"0": model[0]}, ctx)["0"]
    feature_norm = torch.tensor([10.0, 0.0, 4.0]).sqrt()
    assert torch.allclose(scores, model[0].weight.detach().abs() * feature_norm)


def test_wanda_on_convolutions_uses_input_channel_norms(small_task):
    model = DigitsCNN()
    ctx = ScoreContext(model, batches=small_task.train_loader, max_batches=2)
    scores = Wanda().scores({"conv2": model.conv2}, ctx)["conv2"]
    assert scores.shape == model.conv2.weight.shape and torch.all(scores >= 0)


def test_taylor_scores_are_squared_weight_gradient_products(small_task):
    model = DigitsCNN()
    ctx = ScoreContext(model, batches=small_task.train_loader, max_batches=2, loss_fn=small_task.loss_fn)
    scores = Taylor().scores({"fc1": model.fc1}, ctx)["fc1"]
    assert scores.shape == model.fc1.weight.shape and scores.sum() > 0
    assert all(p.grad is None for p in model.parameters())  # no gradients left behind


def test_random_criterion_is_deterministic_for_a_seed():
    a = prune_model(DigitsCNN(), Prune(pattern="unstructured", criterion="random"), torch.zeros(1, 1, 8, 8), lambda *a, **k: None, seed=3)
    b = prune_model(DigitsCNN(), Prune(pattern="unstructured", criterion="random"), torch.zeros(1, 1, 8, 8), lambda *a, **k: None, seed=3)
    assert torch.equal(get_mask(a.fc1), get_mask(b.fc1))


def test_custom_score_function_from_python():
    def prefer_first_half(name, module):
        scores = torch.zeros_like(module.weight)
        scores[: module.weight.shape[0] // 2] = 1.0
        return scores

    model = prune_model(
        DigitsCNN(), Prune(pattern="unstructured", criterion="custom", score_fn="unused:placeholder", amount=0.5),
        torch.zeros(1, 1, 8, 8), lambda *a, **k: None, score_fn=prefer_first_half,
    )
    mask = get_mask(model.fc1)
    assert mask[:64].all() and not mask[64:].any()


def test_custom_score_function_of_wrong_shape_is_refused():
    with pytest.raises(UserError, match="prune.score_fn: returned \\(3,\\) for layer conv1"):
        prune_model(
            DigitsCNN(), Prune(pattern="unstructured", criterion="custom", score_fn="x:y"), torch.zeros(1, 1, 8, 8),
            lambda *a, **k: None, score_fn=lambda name, m: torch.zeros(3),
        )


def test_own_masks_from_a_safetensors_file(tmp_path):
    mask = torch.ones(128, 256)
    mask[:, ::2] = 0
    save_file({"fc1": mask}, tmp_path / "masks.safetensors")
    config = Prune(pattern="unstructured", criterion="custom", masks=str(tmp_path / "masks.safetensors"))
    model = prune_model(DigitsCNN(), config, torch.zeros(1, 1, 8, 8), lambda *a, **k: None)
    assert torch.equal(get_mask(model.fc1), mask) and get_mask(model.conv1) is None


def test_own_mask_for_unknown_layer_is_refused(tmp_path):
    save_file({"decoder": torch.ones(2, 2)}, tmp_path / "m.safetensors")
    config = Prune(pattern="unstructured", criterion="custom", masks=str(tmp_path / "m.safetensors"))
    with pytest.raises(UserError, match="prune.masks: .* 'decoder', which is not a selected layer"):
        prune_model(DigitsCNN(), config, torch.zeros(1, 1, 8, 8), lambda *a, **k: None)


def test_data_criteria_without_data_are_refused():
    with pytest.raises(UserError, match="wanda needs data"):
        prune_model(DigitsCNN(), Prune(pattern="unstructured", criterion="wanda"), torch.zeros(1, 1, 8, 8), lambda *a, **k: None)


def test_movement_scores_accumulate_minus_gradient_times_weight_over_steps():
    from edgecompress.techniques.prune.scoring import MovementTracker

    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    scores: dict = {}
    tracker = MovementTracker({"fc": layer}, scores)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    expected = torch.zeros_like(layer.weight)
    for step in range(3):
        optimizer.zero_grad()
        layer(torch.randn(4, 3)).pow(2).sum().backward()
        expected -= layer.weight.grad * layer.weight.detach()
        tracker.after_backward(step)
        optimizer.step()
    assert torch.allclose(scores["fc"], expected)
    moved = Movement().scores({"fc": layer}, ScoreContext(layer, movement=scores))["fc"]
    assert torch.equal(moved, scores["fc"])
