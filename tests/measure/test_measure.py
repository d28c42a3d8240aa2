from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgecompress.core.measure.artifact import artifact_bytes
from edgecompress.runtime.latency import measure_latencies


def _matmul_model(path: Path, external: bool) -> Path:
    weight = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), name="w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(path), save_as_external_data=external, location=path.name + ".data", size_threshold=0)
    return path


def test_artifact_bytes_includes_external_data(tmp_path):
    inline = _matmul_model(tmp_path / "inline.onnx", external=False)
    split = _matmul_model(tmp_path / "split.onnx", external=True)
    assert artifact_bytes(inline) == inline.stat().st_size
    data = tmp_path / "split.onnx.data"
    assert data.stat().st_size == 64 * 64 * 4
    assert artifact_bytes(split) == split.stat().st_size + data.stat().st_size


def test_latency_is_measured_per_artifact_and_batch(tmp_path):
    path = _matmul_model(tmp_path / "m.onnx", external=False)
    (result,) = measure_latencies([path], (64,), batch_sizes=(1, 32), rounds=3, min_round_seconds=0.01)
    assert set(result) == {1, 32}
    for latency in result.values():
        assert 0 < latency.p25_ms <= latency.median_ms <= latency.p75_ms
        assert latency.repeats >= 3


def test_a_tied_weight_counts_once_as_parameters_and_as_non_zeros():
    from torch import nn

    from edgecompress.core.measure.params import count_nonzero_params, count_params

    table, output = nn.Embedding(10, 4), nn.Linear(4, 10, bias=False)
    output.weight = table.weight  # a language model's tied output layer
    model = nn.Sequential(table, output)
    assert count_params(model) == count_nonzero_params(model) == 40


def test_parametrized_layers_of_the_same_shape_each_count_their_non_zeros():
    """A fake-quantized weight is computed anew at each read; its memory must not be taken for the last one's."""
    import torch
    from torch import nn

    from edgecompress.core.measure.params import count_nonzero_params
    from edgecompress.techniques.quantize.qat import prepare_qat

    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(64, 64, bias=False) for _ in range(8)))
    prepare_qat(dict(model.named_children()), "ternary", "absmean")
    expected = sum(int(torch.count_nonzero(layer.weight)) for layer in model)
    assert 0.5 * 8 * 64 * 64 < count_nonzero_params(model) == expected
