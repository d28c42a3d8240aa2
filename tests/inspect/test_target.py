import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from edgecompress.core.models import DigitsCNN
from edgecompress.inspect import advise_target_size, layer_table
from edgecompress.onnx import export_onnx


def _table():
    return layer_table(DigitsCNN(), (1, 1, 8, 8))


def test_largest_layer_is_cut_first_and_only_as_far_as_needed():
    advice = advise_target_size(_table(), 150_000)  # 212,008 B now: 62,008 B too many
    assert [c.name for c in advice.cuts] == ["fc1"]
    assert advice.cuts[0].bytes_now == 131_584
    assert advice.cuts[0].bytes_after == 131_584 - 62_008
    assert advice.reachable and not advice.fits_already


def test_tight_target_cuts_the_next_largest_after_the_first_reaches_its_floor():
    advice = advise_target_size(_table(), 50_000)
    fc1, conv2 = advice.cuts
    assert fc1.name == "fc1" and fc1.bytes_after == 131_584 - int(131_584 * 0.9)
    assert conv2.name == "conv2"
    after = 212_008 - sum(c.bytes_now - c.bytes_after for c in advice.cuts)
    assert after == 50_000


def test_int8_alone_fits_when_one_byte_per_weight_plus_scales_fits():
    # 53,002 int8 weights + a float32 scale per output channel (32 + 64 + 128 + 10 channels)
    expected = 53_002 + 4 * (32 + 64 + 128 + 10)
    assert advise_target_size(_table(), expected).int8_fits
    assert not advise_target_size(_table(), expected - 1).int8_fits
    assert advise_target_size(_table(), 50_000).int8_bytes == expected


def test_unreachable_target_says_so():
    advice = advise_target_size(_table(), 1_000)
    assert not advice.reachable
    assert len(advice.cuts) == 4 and all(abs(c.keep_fraction - 0.1) < 0.01 for c in advice.cuts)


def test_model_that_fits_needs_no_cuts():
    advice = advise_target_size(_table(), 300_000)
    assert advice.fits_already and advice.cuts == []


class ConvBN(nn.Module):
    """conv -> batch-norm twice (the first conv without a bias), then a Linear head."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 8 * 8, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(torch.relu(self.bn2(self.conv2(x))).flatten(1))


def _trained_looking_bn():
    torch.manual_seed(0)
    model = ConvBN()
    for bn in (model.bn1, model.bn2):  # statistics and affine terms of a trained model: the shift is not zero
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2), bn.bias.data.uniform_(-1, 1)
    return model.eval()


def test_batch_norm_is_counted_as_folded_and_never_proposed_for_shrinking(tmp_path):
    model = _trained_looking_bn()
    table = layer_table(model, (1, 1, 8, 8))
    rows = {r.name: r for r in table.rows}
    assert [n for n, r in rows.items() if r.folds_at_export] == ["bn1", "bn2"]
    assert rows["bn2"].bytes == 4 * 4 * 32 + 8 and rows["bn2"].export_bytes == 4 * 32  # weight, bias, mean, var, count -> a bias

    advice = advise_target_size(table, 1_000)  # unreachable: every layer that can shrink is cut to its floor
    assert [c.name for c in advice.cuts] == ["fc", "conv2", "conv1"]
    assert advice.folded == ("bn1", "bn2")
    weights = 4 * (16 * 9 + 32 * 16 * 9 + 32 + 2048 * 10 + 10)
    assert advice.current_bytes == weights + 4 * (16 + 32) < table.bytes

    exported = onnx.load(str(export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")))
    assert "BatchNormalization" not in {n.op_type for n in exported.graph.node}, "the exporter folds it"
    float_bytes = sum(numpy_helper.to_array(t).nbytes for t in exported.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    assert weights + 4 * 16 == float_bytes, "what is left of bn1 is conv1's new bias; bn2 folds into conv2's bias"
    assert float_bytes <= advice.current_bytes <= float_bytes + 4 * 32


def test_folded_batch_norm_is_said_once_and_flagged_in_the_json():
    from edgecompress.inspect.render import advice_lines, layers_json
    from edgecompress.inspect.saved_size import check_saved_size

    model = _trained_looking_bn()
    table = layer_table(model, (1, 1, 8, 8))
    advice = advise_target_size(table, 50_000)
    lines = advice_lines(advice)
    assert "batch-norm folds into the layer before it at export, so it is not shrunk: bn1, bn2" in lines
    assert not any(line.lstrip().startswith("bn") for line in lines)
    doc = layers_json(table, check_saved_size(model), advice)
    assert {row["name"]: row["folds_at_export"] for row in doc["layers"]} == {"conv1": False, "bn1": True, "conv2": False, "bn2": True, "fc": False}
    assert doc["target"]["folded"] == ["bn1", "bn2"]


class RowRecurrent(nn.Module):
    """The reported model: a GRU (or LSTM) over the 8 image rows, a LayerNorm, then a Linear head."""

    def __init__(self, kind=nn.GRU):
        super().__init__()
        self.rnn, self.norm, self.head = kind(8, 64, batch_first=True), nn.LayerNorm(64), nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.rnn(x.reshape(x.shape[0], 8, 8))
        return self.head(self.norm(out[:, -1]))


@pytest.mark.parametrize("kind, gates", [(nn.GRU, 3), (nn.LSTM, 4)])
def test_int8_estimate_counts_what_the_int8_route_really_quantizes(digits, tmp_path, kind, gates):
    """Issue 18: "about 15.7 KB, which fits" was advised for a 59 KB file. Only what the route quantizes counts
    as int8: the GRU/LSTM weight matrices (quantize/recurrent_int8.py) and the head, not the LayerNorm."""
    from edgecompress.inspect.render import advice_lines
    from edgecompress.techniques.quantize.float_layers import float_layer_details
    from edgecompress.techniques.quantize.onnx_static import quantize_static_int8

    torch.manual_seed(0)
    model = RowRecurrent(kind).eval()
    advice = advise_target_size(layer_table(model, (1, 1, 8, 8)), 20_000)
    rows = gates * 64
    recurrent = rows * (8 + 64) + 4 * 2 * rows + 4 * 2 * rows  # int8 matrices, a scale per row of W and R, float biases
    assert advice.kept_float == (("norm", "LayerNorm"),)
    assert advice.int8_bytes == recurrent + 4 * 128 + (64 * 10 + 10) + 4 * 10
    assert any("counted at 4 B per weight, as int8 leaves them in float: norm (LayerNorm)" in line for line in advice_lines(advice))

    fp32 = export_onnx(model, digits.example_input(), tmp_path / "fp32.onnx")
    int8 = quantize_static_int8(fp32, tmp_path / "int8.onnx", digits.train_loader, max_batches=2)
    # the estimate counts tensors; the file also holds the graph (~1.6 KB of shape nodes here)
    assert advice.int8_bytes <= int8.stat().st_size <= advice.int8_bytes + 2_500, "the estimate is the real file's size"
    left = {e["layer"]: e["weights"] for e in float_layer_details(int8, {}).get("left_float", ())}
    assert left == ({"rnn": "int8 per row, dequantized to float", "norm": "float"} if kind is nn.GRU else {"norm": "float"})


def test_a_layer_type_the_quantizer_does_not_know_is_counted_as_float():
    model = nn.Sequential(nn.Linear(64, 32), nn.LayerNorm(32), nn.Linear(32, 10))
    advice = advise_target_size(layer_table(model, (1, 64)), 10_000)
    assert advice.kept_float == (("1", "LayerNorm"),)
    assert advice.int8_bytes == (64 * 32 + 32 + 4 * 32) + 4 * 64 + (32 * 10 + 10 + 4 * 10)


def test_channel_pruning_then_int8_is_estimated_on_the_pruned_model_until_a_route_surely_fits():
    from edgecompress.inspect.target import Route

    # channels -50%: conv1 16, conv2 32, fc1 128 -> 64 inputs and outputs; fc2's 10 outputs are never cut
    pruned = (16 * 9 + 16) + (32 * 16 * 9 + 32) + (128 * 64 + 64) + (64 * 10 + 10)
    int8 = pruned + 4 * (16 + 32 + 64 + 10)
    assert advise_target_size(_table(), 20_000, model=DigitsCNN()).routes == (Route(0.5, int8),) == (Route(0.5, 14_194),)
    assert advise_target_size(_table(), 60_000, model=DigitsCNN()).routes == ()  # int8 alone fits: nothing to prune
    assert advise_target_size(_table(), 20_000).routes == ()  # no model given: the table alone


def test_a_size_too_close_to_call_tries_the_next_route_then_points_to_fit_with_the_command_given():
    from edgecompress.inspect.render import advice_lines

    command = "edgecompress fit --max-size 5KB --size-of onnx"
    lines = advice_lines(advise_target_size(_table(), 5_000, model=DigitsCNN()), command)
    assert lines[-4:] == [
        "channels -50% then int8: about 14.2 KB, which does not fit",
        "channels -75% then int8: about 3.9 KB, which is too close to call: the file adds its graph to the tensors counted here",
        f"cannot say for sure that it fits: fit runs its candidates and measures their files: {command}",
        "  (without --size-of onnx, fit's budget is the packed .ecz file, smaller still: zeros and ternary weights compress)",
    ]


def test_a_model_whose_channels_cannot_be_removed_is_not_estimated_and_is_sent_to_fit():
    from edgecompress.inspect.render import advice_lines

    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # its only layer's channels are the output
    advice = advise_target_size(layer_table(model, (1, 1, 8, 8)), 500, model=model)
    assert len(advice.routes) == 1 and advice.routes[0].int8_bytes is None and not advice.sure
    lines = advice_lines(advice, "edgecompress fit --recipe RECIPE.yaml --max-size 500B --size-of onnx")
    assert lines[-3].startswith("channels -50% then int8: not estimated: prune.layers: no layer left to prune")
    assert lines[-2].startswith("cannot say for sure that it fits: ")
