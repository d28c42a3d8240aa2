"""How inspection results are shown: a table for the terminal or a log (every value whole), lines of advice,
and JSON."""

from __future__ import annotations

from edgecompress.core.sizes import format_bytes
from edgecompress.inspect.layers import LayerTable
from edgecompress.inspect.saved_size import SavedSizeCheck
from edgecompress.inspect.target import TargetAdvice
from edgecompress.reporting.terminal import Grid


def layers_grid(table: LayerTable, title: str) -> Grid:
    """The per-layer table; `reporting.terminal.print_grid` lays it out for the terminal's width."""
    rows = [
        [r.name, r.type, r.shape, f"{r.params:,}", f"{r.bytes:,}", f"{r.macs:,}", f"{r.sparsity:.1%}", r.dtype]
        for r in table.rows
    ]
    rows.append(["total", "", "", f"{table.params:,}", f"{table.bytes:,}", f"{table.macs:,}", f"{table.sparsity:.1%}", ""])
    headers = ["layer", "type", "shape", "params", "bytes", "MACs", "sparsity", "dtype"]
    return Grid(title, headers, rows, text_columns=frozenset({0, 1, 2, 7}), bold_rows=frozenset({len(rows) - 1}))


def saved_size_line(check: SavedSizeCheck) -> str:
    return (
        f"size check: state_dict tensors {check.tensor_bytes:,} B vs {check.file_label} {check.file_bytes:,} B "
        f"({check.overhead:+,} B): {check.explanation}"
    )


def advice_lines(advice: TargetAdvice, fit_command: str | None = None) -> list[str]:
    """The advice as lines. `fit_command` is the `edgecompress fit` command that measures what the advice can
    only estimate (the accuracy a pruned route costs; a size too close to call or out of reach)."""
    target, now = format_bytes(advice.target_bytes), format_bytes(advice.current_bytes)
    int8 = [f"int8 alone: about {format_bytes(advice.int8_bytes)}, which {_fits(advice, advice.int8_bytes)}"]
    if advice.kept_float:
        layers = ", ".join(f"{name} ({kind})" for name, kind in advice.kept_float)
        kinds = ", ".join(dict.fromkeys(kind for _, kind in advice.kept_float))
        int8[0] += f"; counted at 4 B per weight, as int8 leaves them in float: {layers}"
        int8.append(f"  (ONNX Runtime's int8 quantizer has no {kinds} kernel in its registry)")
    if advice.folded:
        int8.append(f"batch-norm folds into the layer before it at export, so it is not shrunk: {', '.join(advice.folded)}")
    if advice.fits_already:
        return [f"target {target}: the tensors ({now} once exported) already fit", *int8]
    lines = [f"target {target}: the tensors take {now} once exported; in float32, shrink, largest layers first (each kept at >= {advice.min_keep:.0%}):"]
    for cut in advice.cuts:
        lines.append(
            f"  {cut.name}: {format_bytes(cut.bytes_now)} -> {format_bytes(cut.bytes_after)} "
            f"(keep {cut.keep_fraction:.0%}, {cut.factor:.1f}x smaller)"
        )
    if not advice.reachable:
        lines.append(f"  in float32 it does not fit even so: every layer would need to keep less than {advice.min_keep:.0%}")
    lines.extend(int8)
    for route in advice.routes:
        done = f"about {format_bytes(route.int8_bytes)}, which {_fits(advice, route.int8_bytes)}" if route.int8_bytes is not None else f"not estimated: {route.problem}"
        lines.append(f"channels -{route.channels:.0%} then int8: {done}")
    return lines + _fit_lines(advice, fit_command)


def _fits(advice: TargetAdvice, estimate: int) -> str:
    if advice.fits_surely(estimate):
        return "fits"
    if estimate <= advice.target_bytes:
        return "is too close to call: the file adds its graph to the tensors counted here"
    return "does not fit"


def _fit_lines(advice: TargetAdvice, fit_command: str | None) -> list[str]:
    """Where `fit` comes in: the accuracy a pruned route costs, or a size the estimates cannot settle."""
    if fit_command is None or advice.fits_already or advice.fits_surely(advice.int8_bytes) or not advice.routes:
        return []
    if advice.sure:
        return [f"what removing channels costs in accuracy, fit measures (it fine-tunes, then scores the int8 file): {fit_command}"]
    return [
        f"cannot say for sure that it fits: fit runs its candidates and measures their files: {fit_command}",
        "  (without --size-of onnx, fit's budget is the packed .ecz file, smaller still: zeros and ternary weights compress)",
    ]


def layers_json(table: LayerTable, saved: SavedSizeCheck, advice: TargetAdvice | None, fit_command: str | None = None) -> dict:
    doc = {
        "input_shape": list(table.input_shape),
        "layers": [
            {
                "name": r.name, "type": r.type, "shape": list(r.weight_shape), "params": r.params, "bytes": r.bytes,
                "macs": r.macs, "sparsity": r.sparsity, "dtype": r.dtype, "folds_at_export": r.folds_at_export,
            }
            for r in table.rows
        ],
        "total": {"params": table.params, "bytes": table.bytes, "macs": table.macs, "sparsity": table.sparsity},
        "saved_size": {
            "tensor_bytes": saved.tensor_bytes, "file_bytes": saved.file_bytes, "file": saved.file_label,
            "explanation": saved.explanation,
        },
    }
    if advice is not None:
        doc["target"] = {
            "target_bytes": advice.target_bytes, "current_bytes": advice.current_bytes, "reachable": advice.reachable,
            "int8_bytes": advice.int8_bytes, "int8_fits": advice.int8_fits, "min_keep": advice.min_keep,
            "folded": list(advice.folded), "int8_kept_float": [{"layer": name, "type": kind} for name, kind in advice.kept_float],
            "cuts": [
                {"layer": c.name, "bytes_now": c.bytes_now, "bytes_after": c.bytes_after, "keep_fraction": c.keep_fraction}
                for c in advice.cuts
            ],
            "channels_then_int8": [
                {"channels_removed": r.channels, "int8_bytes": r.int8_bytes, "fits": advice.fits_surely(r.int8_bytes), "problem": r.problem or None}
                for r in advice.routes
            ],
            "sure": advice.sure,
            "fit_command": fit_command if _fit_lines(advice, fit_command) else None,
        }
    return doc
