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


def test_a_safetensors_file_is_explained_by_its_length_json_header_and_metadata(tmp_path):
    from edgecompress.core.models.checkpoint import save_model_file

    model = DigitsCNN()
    path = save_model_file(model, tmp_path / "model.safetensors", arch="digits-cnn")
    check = check_saved_size(model, path)
    header_bytes = int.from_bytes(path.read_bytes()[:8], "little")
    assert check.overhead == 8 + header_bytes  # nothing but the length and the header besides the tensors
    assert check.explanation == (
        f"the file holds every tensor densely (212,008 B); the other {8 + header_bytes:,} B are safetensors' 8-byte "
        f"length and its {header_bytes:,} B JSON header (the names, dtypes, shapes and offsets of 8 tensors, "
        "and metadata: edgecompress.arch, edgecompress.layer_sizes)"
    )
    assert "zip" not in check.explanation and "pickle" not in check.explanation


def test_a_safetensors_file_smaller_than_the_model_names_its_narrower_dtype_and_extra_tensors(tmp_path):
    from safetensors.torch import save_file

    model = DigitsCNN()
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_file({**tensors, "head.extra": torch.zeros(10)}, tmp_path / "half.safetensors")
    check = check_saved_size(model, tmp_path / "half.safetensors")
    data = 212_008 // 2 + 40  # every tensor at 2 B per float instead of 4, and 10 float32 more
    assert check.explanation.startswith(
        f"its tensor data is {data:,} B, the model's 212,008 B: tensors stored as F16, converted to the model's dtypes "
        "on loading; 1 tensors the model does not have (e.g. 'head.extra'); the other "
    )
    assert "zip" not in check.explanation and "compressed" not in check.explanation
