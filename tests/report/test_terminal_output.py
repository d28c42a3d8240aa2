"""Tables on a terminal of any width and in logs: every value whole, no line cut or padded."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from edgecompress.cli import main
from edgecompress.core.models import DigitsCNN
from edgecompress.reporting.summary import run_summary_grid
from edgecompress.reporting.terminal import Grid, grid_lines, print_grid
from edgecompress.runtime.latency import Latency

HEADERS = ["model", "accuracy", "file size", "smaller", "packed", "non-zero", "MACs", "b1 latency", "b256 latency", "b256 speed"]
ROWS = [
    ["baseline", "98.33%", "214.5 KB", "1.0x", "182.4 KB", "53,002", "339,328", "9.7 us", "0.863 ms", "1.00x"],
    ["quantize", "98.33%", "16.2 KB", "13.2x", "5.2 KB", "8,405", "87,744", "9.4 us", "0.282 ms", "3.06x"],
]
LAYERS = [[f"features.{i}.conv", "Conv2d", "64x32x3x3", "18,496", "73,984", "294,912", "0.0%", "float32"] for i in range(12)]


def _cells(grid: Grid) -> set[str]:
    return {cell for row in grid.rows for cell in row if cell} | set(grid.headers)


def _whole(lines: list[str], grid: Grid) -> bool:
    text = "\n".join(lines)
    return all(cell in text for cell in _cells(grid)) and "…" not in text


@pytest.mark.parametrize("width", [40, 60, 80])
def test_a_wide_table_keeps_every_value_whole_at_narrow_widths(width):
    grid = Grid("edgecompress: digits (runs/demo)", HEADERS, ROWS)
    lines = grid_lines(grid, width)
    assert _whole(lines, grid)
    assert max(len(line) for line in lines) <= width


def test_a_few_rows_turn_on_their_side_and_many_rows_stack():
    few = grid_lines(Grid("", HEADERS, ROWS), 80)
    assert any("baseline" in line and "quantize" in line for line in few)  # one column per model
    assert any(line.split("│")[1].strip() == "b256 speed" for line in few if "│" in line)
    many = Grid("", ["layer", "type", "shape", "params", "bytes", "MACs", "sparsity", "dtype"], LAYERS)
    stacked = grid_lines(many, 60)
    assert stacked[:3] == ["features.0.conv", "  type      Conv2d", "  shape     64x32x3x3"]
    assert {line for line in stacked if line.startswith("features.")} == {f"features.{i}.conv" for i in range(12)}


def test_a_log_gets_the_whole_table_at_its_natural_width_without_padding():
    grid = Grid("a title wider than the table would be if it were folded into it", HEADERS, ROWS)
    lines = grid_lines(grid, None)
    assert lines[0] == grid.title and _whole(lines, grid)
    assert [cell.strip() for cell in lines[2].split("┃")[1:-1]] == HEADERS  # one row of headers, none folded
    assert not [line for line in lines if line != line.rstrip()]


def test_print_grid_styles_the_table_when_it_fits_the_terminal_and_stacks_it_when_not():
    grid = Grid("t", HEADERS, ROWS)
    wide = Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)
    print_grid(wide, grid)
    assert "┃ model    ┃ accuracy ┃" in wide.file.getvalue()
    narrow = Console(file=io.StringIO(), force_terminal=True, width=50, color_system=None)
    print_grid(narrow, grid)
    out = narrow.file.getvalue().splitlines()
    assert max(len(line) for line in out) <= 50 and _whole(out, grid)


def _latency(ms: float) -> dict[int, Latency]:
    return {1: Latency(ms / 100, ms / 110, ms / 90, 50), 256: Latency(ms, ms * 0.95, ms * 1.05, 50)}


def _measurement(name, score, size, ms):
    return SimpleNamespace(name=name, score=score, artifact_bytes=size, storage_bytes=size // 3, nonzero_params=size // 4,
                           macs=size * 2, latency=_latency(ms))


def test_the_run_summary_is_whole_at_80_columns():
    metric = SimpleNamespace(name="accuracy", unit="%")
    result = SimpleNamespace(task=SimpleNamespace(name="digits", metric=metric), out_dir="runs/demo", baseline_model=DigitsCNN(),
                             baseline=_measurement("baseline", 98.333, 214_508, 0.863),
                             stages=[_measurement("finetune", 98.611, 57_314, 0.345), _measurement("quantize", 98.333, 16_194, 0.282)])
    grid = run_summary_grid(result)
    assert grid.title == "edgecompress: DigitsCNN on digits (runs/demo)"
    lines = grid_lines(grid, 80)
    assert max(len(line) for line in lines) <= 80 and _whole(lines, grid)
    assert "98.33%" in "\n".join(lines) and "98.61%" in "\n".join(lines)


def test_inspect_in_a_log_prints_whole_values_and_no_trailing_spaces(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["inspect", "digits-cnn", "--out", str(tmp_path / "i")]) == 0
    out = capsys.readouterr().out
    for value in ("conv1", "conv2", "fc1", "fc2", "64x32x3x3", "294,912", "131,584", "339,328", "float32", "sparsity"):
        assert value in out
    assert "…" not in out and not [line for line in out.splitlines() if line != line.rstrip()]
    assert "(~397 B per tensor, plus 64-byte alignment)" in out.replace("\n", " ")


def test_inspect_on_a_narrow_terminal_keeps_every_line_within_it(tmp_path, monkeypatch):
    import edgecompress.cli as cli

    terminal = Console(file=io.StringIO(), force_terminal=True, width=50, color_system=None)
    monkeypatch.setattr(cli, "console", terminal)
    assert main(["inspect", "digits-cnn", "--out", str(tmp_path / "i")]) == 0
    lines = terminal.file.getvalue().splitlines()
    table_lines = lines[: lines.index(next(line for line in lines if line.startswith("size check")))]
    assert max(len(line) for line in table_lines) <= 50 and "…" not in "\n".join(lines)
    for name in ("conv1", "conv2", "fc1", "fc2", "total"):
        assert name in table_lines
    assert "  MACs      294,912" in table_lines and "  params    53,002" in table_lines


@pytest.mark.parametrize("terminal", [True, False])
def test_the_demos_summary_is_whole_on_an_80_column_terminal_and_in_a_log(demo_run, terminal, monkeypatch):
    import edgecompress.cli as cli

    result, metrics = demo_run
    out = Console(file=io.StringIO(), force_terminal=terminal, width=80, color_system=None)
    monkeypatch.setattr(cli, "console", out)
    cli._print_run_summary(result)
    lines = out.file.getvalue().splitlines()
    if terminal:
        assert max(len(line) for line in lines if not line.startswith(("edgecompress:", "report:", "latency noisy:"))) <= 80
    assert not [line for line in lines if line != line.rstrip()] and "…" not in "\n".join(lines)
    text = "\n".join(lines)
    for m in (metrics["baseline"], *metrics["stages"]):
        assert f"{m['score']:.2f}%" in text and f"{m['nonzero_params']:,}" in text and f"{m['macs']:,}" in text
        assert f"{m['latency_ms']['batch_256']:.3f} ms" in text
    low, high = metrics["summary"]["speedup_interval"]["batch_256"]
    assert f"{low:.2f}x-{high:.2f}x" in text


def test_many_layers_left_in_float_for_one_reason_are_one_line():
    """A decoder's 25 RMSNorm multiplications are one line, naming the first two and the last; a few stay apart."""
    from types import SimpleNamespace

    from edgecompress.reporting.summary import left_as_is_lines

    norms = [{"layer": f"layers.{i}.norm", "op": "Mul", "weights": "float", "why": "ONNX Runtime's int8 quantizer has no kernel for Mul"} for i in range(25)]
    table = [{"layer": "embed", "op": "Gather", "weights": "float", "why": "a table"}]
    stage = SimpleNamespace(name="quantize", details={"left_float": norms + table})
    assert left_as_is_lines(SimpleNamespace(stages=[stage])) == [
        "stage 1 (quantize): 25 layers (Mul: layers.0.norm, layers.1.norm, ... layers.24.norm) compute in float, weights float: "
        "ONNX Runtime's int8 quantizer has no kernel for Mul",
        "stage 1 (quantize): embed (Gather) computes in float, weights float: a table",
    ]
