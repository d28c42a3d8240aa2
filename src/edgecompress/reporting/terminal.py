"""Tables for a terminal or a log with every value whole, at any width.

A table that does not fit the terminal is never cut (`accu…`, `98.3…`): it turns on its side (one column per
row, for a few rows) or becomes one block of `name: value` lines per row. A log (output that is not a
terminal) gets the whole table at its natural width, without the padding that would end its lines in spaces.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

NATURAL = 100_000  # render width that never constrains a table: it takes its natural width


@dataclass(frozen=True)
class Grid:
    """A table as plain strings: a title, column headers, rows, and which columns are text (left-aligned)."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    text_columns: frozenset[int] = frozenset({0})
    bold_rows: frozenset[int] = field(default_factory=frozenset)  # e.g. a total row, set off by a rule

    def rich_table(self) -> Table:
        table = Table()
        for i, header in enumerate(self.headers):
            table.add_column(header, justify="left" if i in self.text_columns else "right", no_wrap=True)
        for i, row in enumerate(self.rows):
            if i in self.bold_rows:
                table.add_section()
            table.add_row(*row, style="bold" if i in self.bold_rows else None)
        return table

    def transposed(self) -> Grid:
        """One column per row: for tables with a few wide rows (a run's models) and many columns."""
        headers = [self.headers[0], *(row[0] for row in self.rows)]
        rows = [[header, *(row[i] for row in self.rows)] for i, header in enumerate(self.headers) if i]
        return Grid(self.title, headers, rows)


def grid_lines(grid: Grid, width: int | None) -> list[str]:
    """The grid as lines no wider than `width` when any layout allows it (None: a log, no limit).

    Layouts, first that fits: the table; the table on its side; one block of `header  value` lines per row.
    The title is a line of its own, whole, and the terminal wraps it if it must.
    """
    title = [grid.title] if grid.title else []  # its own line: a title wider than the table is never folded
    return title + _layout(grid, width)[1]


def print_grid(console: Console, grid: Grid) -> None:
    """Print on `console`: a styled table when it fits the terminal, else the lines of `grid_lines`."""
    width = console.width if console.is_terminal else None
    table, lines = _layout(grid, width)
    if grid.title:
        console.print(grid.title, soft_wrap=True, markup=False, highlight=False)
    if console.is_terminal and table is not None:
        console.print(table.rich_table())
        return
    for line in lines:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _layout(grid: Grid, width: int | None) -> tuple[Grid | None, list[str]]:
    """The first layout that fits: (the grid drawn as a table, its lines), or (None, stacked lines)."""
    for layout in [grid, grid.transposed()] if len(grid.rows) <= 8 else [grid]:
        lines = _table_lines(layout)
        if width is None or max(cell_len(line) for line in lines) <= width:
            return layout, lines
    return None, _stacked_lines(grid)


def _table_lines(grid: Grid) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=NATURAL, color_system=None, force_terminal=False, legacy_windows=False).print(grid.rich_table())
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def _stacked_lines(grid: Grid) -> list[str]:
    key_width = max(len(h) for h in grid.headers[1:]) if len(grid.headers) > 1 else 0
    lines = []
    for row in grid.rows:
        lines.append(row[0])
        lines += [f"  {header:<{key_width}}  {value}" for header, value in zip(grid.headers[1:], row[1:]) if value]
    return lines
