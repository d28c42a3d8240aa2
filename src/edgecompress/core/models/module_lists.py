"""ModuleLists that lost entries (whole transformer layers removed), and which original entries are left.

Removing layer 5 of 12 renames layers 6-11 to 5-10, so a checkpoint's weights no longer line up with the
original architecture. The surviving entries' original positions are recorded on the list; a checkpoint
stores them (`checkpoint.py`), and reloading drops the same entries from a freshly built model before its
weights are loaded.
"""

from __future__ import annotations

from torch import nn

KEPT_ENTRIES = "edgecompress_kept_entries"  # attribute of a ModuleList: original positions of its entries


def keep_entries(entries: nn.ModuleList, kept: list[int]) -> None:
    """Keep only the entries at positions `kept` (increasing) of `entries`, in place, and record their
    positions in the list as it was first built (removals compose).

    >>> keep_entries(model.layers, [0, 1, 3])  # doctest: +SKIP
    """
    original = original_positions(entries)
    survivors = [entries[i] for i in kept]
    for index in range(len(entries) - 1, -1, -1):
        del entries[index]
    entries.extend(survivors)
    setattr(entries, KEPT_ENTRIES, [original[i] for i in kept])


def original_positions(entries: nn.ModuleList) -> list[int]:
    """Where each entry of `entries` stood in the list as first built."""
    return list(getattr(entries, KEPT_ENTRIES, range(len(entries))))


def shortened_lists(model: nn.Module) -> dict[str, list[int]]:
    """{name: original positions of the entries left} for every ModuleList of `model` that lost entries."""
    return {name: original_positions(module) for name, module in model.named_modules()
            if isinstance(module, nn.ModuleList) and hasattr(module, KEPT_ENTRIES)}
