"""The MSE calibrator: the activation range with the least squared uint8 error, on ORT's grid."""

import numpy as np
import pytest
from onnxruntime.quantization.quant_utils import compute_scale_zp

from edgecompress.techniques.quantize.calibration import HISTOGRAM_BINS, mse_range


def activation_mse(values, low, high):
    """Mean squared error of `values` after ONNX Runtime's own uint8 round trip on [low, high]."""
    zero_point, scale = compute_scale_zp(np.float32(low), np.float32(high), np.uint8(0), np.uint8(255))
    quantized = np.clip(np.round(values / scale) + zero_point, 0, 255)
    return float(np.mean(np.square(values.astype(np.float64) - (quantized - zero_point) * scale)))


def value_histogram(values):
    """What ORT's value histogram collector keeps: counts over [-max|x|, max|x|], plus min and max."""
    threshold = np.abs(values).max()
    hist, edges = np.histogram(values, HISTOGRAM_BINS, range=(-threshold, threshold))
    return hist, edges.astype(np.float32), values.min(), values.max()


def best_range_by_brute_force(values, steps=24):
    """The least-MSE range on the real values, over a grid of fractions of min and max."""
    grid = [(values.min() * i / steps, values.max() * j / steps) for i in range(steps + 1) for j in range(1, steps + 1)]
    return min(grid, key=lambda r: activation_mse(values, *r))


@pytest.mark.parametrize("outliers", [[60.0, -45.0, 80.0], [8.0] * 3, "heavy tail"])
def test_mse_range_beats_minmax_on_a_tensor_with_outliers(outliers):
    """At 8 bits clipping is costly: MSE trims the extremes a little, and finds the best range there is."""
    rng = np.random.default_rng(0)
    values = rng.standard_t(2, 10_000) if outliers == "heavy tail" else np.concatenate([rng.normal(0, 1, 10_000), outliers])
    values = values.astype(np.float32)
    low, high = mse_range(*value_histogram(values))
    minmax = activation_mse(values, values.min(), values.max())
    assert low > values.min() and high < values.max(), "the extremes are clipped"
    assert activation_mse(values, low, high) < minmax
    assert activation_mse(values, low, high) <= 1.01 * activation_mse(values, *best_range_by_brute_force(values))


def test_mse_range_keeps_the_whole_range_of_uniform_values():
    values = np.random.default_rng(1).uniform(0, 6, 50_000).astype(np.float32)  # a ReLU-like tensor
    low, high = mse_range(*value_histogram(values))
    assert low == 0.0 and high >= 0.97 * values.max()
    assert activation_mse(values, low, high) <= activation_mse(values, 0.0, values.max()) * 1.01


def test_constant_zero_tensor_gets_an_empty_range():
    assert mse_range(*value_histogram(np.zeros(100, np.float32))) == (0.0, 0.0)
