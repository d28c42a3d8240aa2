"""Terminal lines of a sweep's two comparisons, printed by the CLI: the smaller dense model with as many
parameters as each pruned point, and each channel-pruned architecture trained from scratch."""

from __future__ import annotations

from edgecompress.core.results import SweepResult


def comparison_lines(result: SweepResult) -> list[str]:
    """One line per level of each comparison, saying which wins.

    >>> comparison_lines(result)  # doctest: +SKIP
    ['28,298 params: pruned (unstructured 0.5) 98.89 vs dense width x0.72 (28,760 params) 99.44: dense wins',
     'channel 0.8 (2,367 params): fine-tuned 87.50 vs trained from scratch 97.22: from scratch wins']
    """
    lines = []
    for row in result.dense_comparison:
        pruned = f"{row['params']:,} params: pruned ({row['pruned_method']} {row['level']:g}) {row['pruned_score']:.2f}"
        if row["dense_score"] is None:
            lines.append(f"{pruned}: no smaller dense model, the thinnest one of this architecture has more parameters")
            continue
        lines.append(
            f"{pruned} vs dense width x{row['dense_width']:.2f} ({row['dense_params']:,} params) {row['dense_score']:.2f}: "
            + ("a tie" if row["winner"] == "tie" else f"{row['winner']} wins")
        )
    for row in result.scratch_comparison:
        lines.append(
            f"{row['method']} {row['level']:g} ({row['params']:,} params): fine-tuned {row['finetuned_score']:.2f} vs "
            f"trained from scratch {row['from_scratch_score']:.2f}: " + ("a tie" if row["winner"] == "tie" else f"{row['winner']} wins")
        )
    return lines
