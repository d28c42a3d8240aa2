"""Activation ranges for static int8: ORT's calibrators, plus the MSE calibrator ORT does not have.

ONNX Runtime 1.32 offers min-max, percentile, entropy (KL) and distribution calibration, not MSE. The MSE
calibrator picks, per tensor, the range [low, high] whose uint8 grid gives the least mean squared error over
the calibration values: it clips rare outliers when that costs less than the coarser grid they would force
on every other value. ORT still does the collecting (graph augmentation, running, value histograms) and the
quantizing; only the range search is ours, and the ranges go back to `quantize_static` through its
calibration cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
from onnxruntime.quantization.calibrate import TensorsData, create_calibrator, save_tensors_data

ORT_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}
CALIBRATION_METHODS = (*ORT_METHODS, "mse")
HISTOGRAM_BINS = 2048  # the resolution ORT's percentile calibrator uses
RANGE_STEPS = 128  # candidate ends per side: k/128 of the observed min and max
UINT8_LEVELS = 255


def mse_range(hist: np.ndarray, edges: np.ndarray, low: float, high: float, steps: int = RANGE_STEPS, levels: int = UINT8_LEVELS) -> tuple[float, float]:
    """The [low', high'] with the least squared uint8 error over a value histogram; min-max is a candidate.

    Candidates are k/`steps` of the observed `low` (k = 0..steps) times j/`steps` of `high` (j = 1..steps).
    A bin's values are taken as spread evenly over it: a clipped bin costs its centre's distance to the
    clip point squared; a kept bin costs its centre's rounding error plus the bin's own spread (width^2/12)
    when the grid step is at least a bin wide, else the rounding noise of spread values, step^2/12. The full
    observed range (k = j = steps) is always a candidate.
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high == low:  # a constant-zero tensor: any range is exact
        return low, high
    occupied = hist > 0  # empty bins add nothing; skipping them makes the search ~10x faster
    centres = ((edges[:-1].astype(np.float64) + edges[1:]) / 2)[occupied]
    counts = hist[occupied].astype(np.float64)
    fractions = np.arange(steps + 1) / steps
    lows = low * fractions if low < 0 else np.zeros(1)
    highs = high * fractions[1:] if high > 0 else np.zeros(1)
    best = (np.inf, low, high)
    for candidate_low in lows:
        usable = highs[highs > candidate_low]
        if usable.size == 0:
            continue
        errors = _weighted_errors(centres, counts, candidate_low, usable, levels, bin_width=float(edges[1] - edges[0])).sum(axis=1)
        i = int(np.argmin(errors))
        if errors[i] < best[0]:
            best = (errors[i], float(candidate_low), float(usable[i]))
    return best[1], best[2]


def _weighted_errors(values: np.ndarray, weights: np.ndarray, low: float, highs: np.ndarray, levels: int, bin_width: float = 0.0) -> np.ndarray:
    """Squared quantization error of each value (columns) for each candidate high end (rows), times its weight.

    With `bin_width` > 0 the values are histogram bin centres (see `mse_range`); with 0 they are exact.
    """
    low = min(low, 0.0)
    highs = np.maximum(highs, 0.0)
    scales = ((highs - low) / levels)[:, None]
    zero_points = np.clip(np.round(-low / scales), 0, levels)
    quantized = np.clip(np.round(values[None, :] / scales) + zero_points, 0, levels)
    errors = np.square(values[None, :] - (quantized - zero_points) * scales)
    if bin_width > 0:
        kept = (values[None, :] >= low) & (values[None, :] <= highs[:, None])
        spread = np.where(scales >= bin_width, errors + bin_width**2 / 12, np.square(scales) / 12)
        errors = np.where(kept, spread, errors)
    return weights[None, :] * errors


def write_mse_calibration(model: Path, reader: CalibrationDataReader, cache: Path, work: Path) -> None:
    """Collect value histograms of every float tensor of `model` with ORT, write MSE ranges to `cache`.

    `cache` is ORT's calibration cache format: `quantize_static(..., calibrate_method=MinMax,
    calibration_cache_path=cache)` then quantizes with these ranges without calibrating again.
    """
    calibrator = create_calibrator(
        model,
        None,  # every float tensor, as quantize_static's own calibration does
        augmented_model_path=str(work / "augmented.onnx"),
        calibrate_method=CalibrationMethod.Entropy,  # the calibrator that keeps signed value histograms
        extra_options={"num_bins": HISTOGRAM_BINS},
    )
    calibrator.collect_data(reader)
    ranges = {}
    for name, (hist, edges, low, high, *_) in calibrator.collector.get_histogram_dict().items():
        best_low, best_high = mse_range(hist, edges, low, high)
        ranges[name] = (np.array(best_low, np.float32), np.array(best_high, np.float32))
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, ranges), cache)
