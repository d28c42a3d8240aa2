"""Given a target size, which layers must shrink and by how much, largest layers first."""

from __future__ import annotations

from dataclasses import dataclass

from edgecompress.inspect.layers import LayerTable

INT8_BYTES_PER_PARAM = 1.0


@dataclass(frozen=True)
class LayerCut:
    name: str
    bytes_now: int
    bytes_after: int

    @property
    def keep_fraction(self) -> float:
        return self.bytes_after / self.bytes_now if self.bytes_now else 1.0

    @property
    def factor(self) -> float:
        return self.bytes_now / self.bytes_after if self.bytes_after else float("inf")


@dataclass(frozen=True)
class TargetAdvice:
    target_bytes: int
    current_bytes: int
    int8_bytes: int
    cuts: list[LayerCut]
    reachable: bool
    min_keep: float

    @property
    def fits_already(self) -> bool:
        return self.current_bytes <= self.target_bytes

    @property
    def int8_fits(self) -> bool:
        return self.int8_bytes <= self.target_bytes


def advise_target_size(table: LayerTable, target_bytes: int, min_keep: float = 0.1) -> TargetAdvice:
    """Shrink the largest layers first, each down to at most `min_keep` of its bytes, until the model fits.

    A layer is cut only as far as needed: the first layer that covers the remaining excess takes just that.
    `int8_bytes` estimates int8 storage: one byte per float parameter plus a float32 scale per output channel.

    >>> from edgecompress.inspect.layers import layer_table
    >>> from edgecompress.core.models import DigitsCNN
    >>> [c.name for c in advise_target_size(layer_table(DigitsCNN(), (1, 1, 8, 8)), 100_000).cuts]
    ['fc1', 'conv2']
    """
    excess = table.bytes - target_bytes
    cuts: list[LayerCut] = []
    for row in sorted(table.rows, key=lambda r: (-r.bytes, r.name)):
        if excess <= 0:
            break
        if row.bytes == 0:
            continue
        removable = int(row.bytes * (1.0 - min_keep))
        cut = min(excess, removable)
        cuts.append(LayerCut(row.name, row.bytes, row.bytes - cut))
        excess -= cut
    return TargetAdvice(target_bytes, table.bytes, _int8_bytes(table), cuts, excess <= 0, min_keep)


def _int8_bytes(table: LayerTable) -> int:
    """Float weights as int8 plus a float32 scale per output channel; buffers and non-float tensors as they are."""
    total = 0
    for row in table.rows:
        if row.dtype.startswith(("float", "bfloat")) and row.params:
            out_channels = row.weight_shape[0] if row.weight_shape else 1
            total += int(row.params * INT8_BYTES_PER_PARAM) + 4 * out_channels + row.buffer_bytes
        else:
            total += row.bytes
    return total
