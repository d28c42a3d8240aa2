"""Ranks for a parameter budget: the factorized layers together keep `keep` of their parameters.

Per-layer rounding alone misses a budget by up to one rank's worth of parameters per layer (1-2% on small
layers), so we start from each layer's proportional rank and then move single ranks up or down, in whichever
layer brings the total closest to the budget, until the total is within 0.5% of it (stopping early leaves each
layer near its proportional share: driving the error to zero can starve a small layer) or no move helps. A layer may also stay dense when that is
what the budget allows (factorizing it could only save parameters it is not asked to save).
"""

from __future__ import annotations

from dataclasses import dataclass

CLOSE_ENOUGH = 0.005  # of the budget


@dataclass(frozen=True)
class LayerShape:
    """A layer as the matrix it factorizes: `rows` outputs x `cols` inputs (in*K*K for a convolution)."""

    rows: int
    cols: int
    bias: int

    @property
    def dense(self) -> int:
        return self.rows * self.cols + self.bias

    @property
    def max_rank(self) -> int:
        """Largest rank that still holds fewer weights than the dense matrix (0: none does)."""
        return min(min(self.rows, self.cols), -(-self.rows * self.cols // (self.rows + self.cols)) - 1)

    def params(self, rank: int | None) -> int:
        return self.dense if rank is None else rank * (self.rows + self.cols) + self.bias


def allocate_ranks(shapes: dict[str, LayerShape], keep: float) -> dict[str, int | None]:
    """Rank per layer (None: stays dense) whose total parameter count is closest to `keep` of theirs.

    >>> allocate_ranks({"fc1": LayerShape(300, 64, 300), "fc2": LayerShape(100, 300, 100)}, 0.25)
    {'fc1': 12, 'fc2': 19}
    """
    target = keep * sum(s.dense for s in shapes.values())
    # a layer's states in size order: ranks 1..max_rank, then dense (index max_rank + 1)
    states = {}
    for name, shape in shapes.items():
        ideal = round((keep * shape.dense - shape.bias) / (shape.rows + shape.cols))
        states[name] = min(max(ideal, 1), shape.max_rank + 1)

    def size(name: str, state: int) -> int:
        shape = shapes[name]
        return shape.params(None if state > shape.max_rank else state)

    def valid(name: str, state: int) -> bool:
        return 1 <= state <= shapes[name].max_rank + 1

    # moves: one layer a rank up or down, or one up and another down (single moves alone can get stuck)
    names = list(states)
    moves = [{n: d} for n in names for d in (-1, 1)] + [{a: 1, b: -1} for a in names for b in names if a != b]
    total = sum(size(n, s) for n, s in states.items())
    while abs(total - target) > CLOSE_ENOUGH * target:
        best, best_total = None, total
        for move in moves:
            if all(valid(n, states[n] + d) for n, d in move.items()):
                candidate = total + sum(size(n, states[n] + d) - size(n, states[n]) for n, d in move.items())
                if abs(candidate - target) < abs(best_total - target):
                    best, best_total = move, candidate
        if best is None:
            break
        for name, step in best.items():
            states[name] += step
        total = best_total
    return {n: (None if s > shapes[n].max_rank else s) for n, s in states.items()}
