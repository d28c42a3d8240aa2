"""Parse untrusted YAML (recipes) as plain data, bounded: no duplicate keys, no deep nesting, no alias bombs.

`yaml.safe_load` already refuses Python tags, but it accepts three things a hostile recipe uses:
- aliases that expand exponentially ("billion laughs": ~400 bytes naming 10^9 values). PyYAML shares the
  aliased objects, so parsing is quick, but anything that walks the result (validation, an error message)
  walks all 10^9. The composed node graph is measured with aliases expanded before anything is built;
- nesting thousands of levels deep, which ends in a RecursionError inside PyYAML's composer;
- a key given twice (two `model:` lines), where the last one would silently win.
Each is a `yaml.YAMLError` with the position, like any other syntax error.

>>> load_bounded_yaml("model: digits-cnn\\nstages: [{stage: quantize}]\\n")
{'model': 'digits-cnn', 'stages': [{'stage': 'quantize'}]}
"""

from __future__ import annotations

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import CollectionNode, MappingNode

from edgecompress.untrusted.limits import MAX_RECIPE_DEPTH, MAX_RECIPE_VALUES

_MERGE_TAG = "tag:yaml.org,2002:merge"


class BoundedSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with the three bounds above; the limits are read when the loader is made."""

    def __init__(self, stream):
        super().__init__(stream)
        self.max_depth = MAX_RECIPE_DEPTH.value()
        self.max_values = MAX_RECIPE_VALUES.value()
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise ComposerError(None, None, f"nests deeper than {self.max_depth} levels "
                                    f"(raise it with {MAX_RECIPE_DEPTH.env}=N)", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            _ExpandedSize(self.max_values, self.max_depth).measure(node)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader reports it itself
                    continue
                if duplicate:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"found the key {str(key)[:40]!r} twice", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class _ExpandedSize:
    """Values and depth of a composed node graph as if every alias were copied out; stops at the limits."""

    def __init__(self, max_values: int, max_depth: int):
        self.max_values, self.max_depth = max_values, max_depth
        self.measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height) of finished subtrees
        self.open: set[int] = set()  # nodes being measured: meeting one again means an alias to an ancestor

    def measure(self, node, depth: int = 1) -> tuple[int, int]:
        key = id(node)
        if key in self.measured:
            values, height = self.measured[key]
        elif key in self.open:
            raise ComposerError(None, None, "an alias refers to a value that contains it (a recursive value)",
                                node.start_mark)
        else:
            values, height = 1, 1
            if isinstance(node, CollectionNode):
                self.open.add(key)
                children = [c for pair in node.value for c in pair] if isinstance(node, MappingNode) else node.value
                for child in children:
                    child_values, child_height = self.measure(child, depth + 1)
                    values, height = values + child_values, max(height, child_height + 1)
                    self._check(values, depth + height - 1, node)
                self.open.discard(key)
            self.measured[key] = (values, height)
        self._check(values, depth + height - 1, node)
        return values, height

    def _check(self, values: int, depth: int, node) -> None:
        if values > self.max_values:
            raise ComposerError(None, None, f"expands to more than {self.max_values:,} values through aliases "
                                f"(raise it with {MAX_RECIPE_VALUES.env}=N)", node.start_mark)
        if depth > self.max_depth:
            raise ComposerError(None, None, f"nests deeper than {self.max_depth} levels through aliases "
                                f"(raise it with {MAX_RECIPE_DEPTH.env}=N)", node.start_mark)


def load_bounded_yaml(text: str):
    """The plain data of one YAML document, under the bounds above; errors are `yaml.YAMLError`."""
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
