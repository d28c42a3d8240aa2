import torch
from torch.nn.utils import prune

from edgecompress.core.models import DigitsCNN
from edgecompress.inspect import check_saved_size


def test_dense_state_dict_file_is_tensors_plus_small_container_overhead():
    check = check_saved_size(DigitsCNN())
    assert check.tensor_bytes == 212_008
    assert 0 < check.overhead < 8_000
    assert "zip container" in check.explanation


def test_users_own_file_is_measured_on_disk(tmp_path):
    model = DigitsCNN()
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    check = check_saved_size(model, path)
    assert check.file_bytes == path.stat().st_size
    assert check.file_label == str(path)


def test_pruning_masks_are_called_out_as_making_the_file_bigger():
    model = DigitsCNN()
    prune.l1_unstructured(model.fc1, "weight", amount=0.9)
    check = check_saved_size(model)
    assert check.tensor_bytes > 212_008
    assert "masks" in check.explanation and "bigger" in check.explanation
