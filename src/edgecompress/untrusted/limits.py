"""Every size limit on untrusted input, in one table, each raised through an environment variable.

A limit is read when it is checked (not at import), so `EDGECOMPRESS_MAX_...=N edgecompress ...` and a test's
monkeypatched environment both apply. docs/security.md lists the same table.

>>> MAX_RECIPE_BYTES.value()
1048576
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from edgecompress.core.errors import UserError

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limit:
    """A ceiling on something a file declares or contains; `env` raises it."""

    env: str
    default: int
    unit: str  # what is counted: "bytes", "values", "levels", "files", "x"
    applies_to: str  # for docs/security.md and error messages

    def value(self) -> int:
        text = os.environ.get(self.env)
        if text is None:
            return self.default
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise UserError(f"{self.env}: {text[:40]!r} is not a positive integer; unset it or give a number")
        return value

    def check(self, amount: int, what: str) -> None:
        """Raise a one-line UserError naming `what`, the amount, the limit and how to raise it."""
        if amount > self.value():
            raise UserError(f"{what} is {amount:,} {self.unit}, over the limit of {self.value():,} {self.unit} "
                            f"(raise it with {self.env}=N if you trust the file)")


MAX_MODEL_BYTES = Limit("EDGECOMPRESS_MAX_MODEL_BYTES", 4 * GIB, "bytes",
                        "a model or weights file (.safetensors, .pt/.pth/.bin/.ckpt, .onnx, each ONNX external-data "
                        "file, each file of an encoder folder)")
MAX_TENSOR_BYTES = Limit("EDGECOMPRESS_MAX_TENSOR_BYTES", 2 * GIB, "bytes",
                         "one tensor as declared (shape x element size) in a safetensors or ONNX file")
MAX_SAFETENSORS_HEADER_BYTES = Limit("EDGECOMPRESS_MAX_SAFETENSORS_HEADER_BYTES", 16 * MIB, "bytes",
                                     "the JSON header of a safetensors file (names, shapes, metadata)")
MAX_PACKED_BYTES = Limit("EDGECOMPRESS_MAX_PACKED_BYTES", 2 * GIB, "bytes", "a packed .ecz file")
MAX_UNPACKED_BYTES = Limit("EDGECOMPRESS_MAX_UNPACKED_BYTES", 2 * GIB, "bytes",
                           "the ONNX file a .ecz restores (protobuf's own ceiling is 2 GiB)")
MAX_UNPACK_RATIO = Limit("EDGECOMPRESS_MAX_UNPACK_RATIO", 100, "x",
                         "restored bytes per packed byte of a .ecz file, above UNPACK_RATIO_FREE_BYTES")
UNPACK_RATIO_FREE_BYTES = 64 * MIB  # a .ecz may always restore this much, whatever its ratio
MAX_ECZ_MANIFEST_BYTES = Limit("EDGECOMPRESS_MAX_ECZ_MANIFEST_BYTES", 16 * MIB, "bytes",
                               "the decompressed JSON manifest of a .ecz file")
MAX_RECIPE_BYTES = Limit("EDGECOMPRESS_MAX_RECIPE_BYTES", 1 * MIB, "bytes", "a YAML recipe file")
MAX_RECIPE_VALUES = Limit("EDGECOMPRESS_MAX_RECIPE_VALUES", 100_000, "values",
                          "the values of a recipe with every YAML alias expanded")
MAX_RECIPE_DEPTH = Limit("EDGECOMPRESS_MAX_RECIPE_DEPTH", 64, "levels",
                         "how deeply a recipe's lists and mappings nest (aliases expanded)")
MAX_TEXT_BYTES = Limit("EDGECOMPRESS_MAX_TEXT_BYTES", 64 * MIB, "bytes",
                       "a JSON or text file of an encoder or artifact folder (config.json, tokenizer.json, "
                       "vocab.txt, encoder.json), and `embed --file`")
MAX_FOLDER_FILES = Limit("EDGECOMPRESS_MAX_FOLDER_FILES", 10_000, "files",
                         "the files of an encoder or artifact folder, subfolders included")

ALL_LIMITS = (MAX_MODEL_BYTES, MAX_TENSOR_BYTES, MAX_SAFETENSORS_HEADER_BYTES, MAX_PACKED_BYTES, MAX_UNPACKED_BYTES,
              MAX_UNPACK_RATIO, MAX_ECZ_MANIFEST_BYTES, MAX_RECIPE_BYTES, MAX_RECIPE_VALUES, MAX_RECIPE_DEPTH,
              MAX_TEXT_BYTES, MAX_FOLDER_FILES)
