import torch
from safetensors import safe_open

from edgecompress.core.masks import set_mask
from edgecompress.core.models import DigitsCNN, load_model
from edgecompress.core.models.checkpoint import save_model_file
from tests.prune.test_channel import prune_channels


def test_pruned_model_reloads_from_safetensors_without_pickle(tmp_path):
    torch.manual_seed(0)
    model = prune_channels(DigitsCNN(), torch.zeros(1, 1, 8, 8), amount=0.5)
    path = save_model_file(model, tmp_path / "pruned.safetensors", arch="digits-cnn")
    reloaded = load_model(str(path)).module
    assert reloaded.conv2.out_channels == 32 and reloaded.fc1.in_features == 128
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(reloaded(x), model(x))


def test_masks_are_baked_in_and_not_saved(tmp_path):
    model = DigitsCNN()
    set_mask(model.fc1, torch.rand(model.fc1.weight.shape) > 0.5)
    path = save_model_file(model, tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    assert keys == set(DigitsCNN().state_dict())
    reloaded = load_model("digits-cnn", weights=str(path)).module
    assert torch.equal(reloaded.fc1.weight, model.fc1.weight.detach())
