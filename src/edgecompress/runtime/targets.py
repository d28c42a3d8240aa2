"""Where a model will run: the CPU classes whose int8 arithmetic differs, and the int8 format each one needs.

ONNX Runtime's uint8-activation x int8-weight kernels are not the same computation on every CPU
(FINDINGS sec. 7). On x86 with AVX2 but without VNNI they multiply with `vpmaddubsw`, which adds each pair
of products in 16 bits and saturates: 255 x 127 x 2 = 64,770 does not fit in 32,767. VNNI's `vpdpbusd`
accumulates in 32 bits and does not saturate. Weights within +-64 keep every pair at most
255 x 64 x 2 = 32,640, exact on both; measured on the digits CNN, they cost no accuracy and no speed.

A target names the CPU class that will run the model, or `portable` (exact on every class, the default), or
`auto` (the machine running edgecompress). A format is chosen per target, never assumed from the machine
that compresses.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from edgecompress.core.errors import UserError

Target = Literal["portable", "auto", "x86-avx2", "x86-vnni", "arm64"]
TARGETS: tuple[str, ...] = get_args(Target)
CPU_CLASSES = TARGETS[2:]
DEFAULT_TARGET = "portable"
# the CPU flags that decide the class, recorded with every measurement
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


@dataclass(frozen=True)
class Int8Format:
    """How int8 weights are stored for a target: `weight_max` is the largest |integer weight|."""

    weight_bits: int
    why: str

    @property
    def weight_max(self) -> int:
        return 127 if self.weight_bits == 8 else 64

    @property
    def reduce_range(self) -> bool:
        """ONNX Runtime's name for 7-bit weights (its quantizers then use [-64, 64])."""
        return self.weight_bits == 7


SEVEN_BIT = Int8Format(7, "weights within +-64 with uint8 activations: every 16-bit pair sum fits (255 x 64 x 2 = 32,640), exact on every CPU class")
FORMATS = {
    "x86-vnni": Int8Format(8, "VNNI accumulates uint8 x int8 products in 32 bits: full int8 weights are exact"),
    "x86-avx2": SEVEN_BIT,
    # Measured under qemu-aarch64 (cortex-a53/a72 without dot product, neoverse-n1, max): NEON adds two
    # int8 products in 16 bits, which only (-128) x (-128) pairs can overflow; symmetric weights never hold -128.
    "arm64": Int8Format(8, "NEON pairs int8 products in 16 bits; symmetric weights within +-127 never overflow them (2 x 128 x 127 = 32,512)"),
    "portable": SEVEN_BIT,
}


@dataclass(frozen=True)
class HostCpu:
    """The machine running edgecompress: its CPU class and the flags that decided it."""

    cpu_class: str
    machine: str
    model: str
    flags: tuple[str, ...]

    def to_json(self) -> dict:
        return {"cpu_class": self.cpu_class, "machine": self.machine, "model": self.model, "int8_flags": list(self.flags)}

    def describe(self) -> str:
        return f"{self.cpu_class} ({self.model})" if self.model else self.cpu_class


@functools.cache
def host_cpu() -> HostCpu:
    """Detect the CPU class from the kernel's CPU flags (what ONNX Runtime's own dispatch looks at)."""
    machine = platform.machine().lower()
    flags, model = _cpuinfo()
    if machine in ("aarch64", "arm64"):
        cpu_class = "arm64"
    elif machine in ("x86_64", "amd64"):
        cpu_class = "x86-vnni" if {"avx512_vnni", "avx_vnni"} & flags else "x86-avx2"
    else:
        cpu_class = machine
    return HostCpu(cpu_class, machine, model, tuple(f for f in INT8_FLAGS if f in flags))


def _cpuinfo() -> tuple[set[str], str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set(), platform.processor()
    flags: set[str] = set()
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "cpu model") and not model:
            model = value.strip()
    return flags, model


def check_target(target: str) -> str:
    """`target` as given, if it is one we know; a one-line error naming the choices otherwise."""
    if target not in TARGETS:
        raise UserError(f"target: got {target!r}; choose one of {', '.join(TARGETS)} (default {DEFAULT_TARGET})")
    return target


def resolve_target(target: str) -> str:
    """The target with `auto` replaced by the host's class; `portable` stays `portable`."""
    check_target(target)
    if target != "auto":
        return target
    detected = host_cpu().cpu_class
    if detected not in CPU_CLASSES:
        raise UserError(f"target: auto found a {detected} CPU, which edgecompress has no int8 format for; give --target portable")
    return detected


def int8_format(target: str) -> Int8Format:
    """The int8 weight format that is exact on `target`.

    >>> int8_format("portable").weight_max
    64
    """
    return FORMATS[resolve_target(target)]


def classes_of(target: str) -> tuple[str, ...]:
    """The CPU classes an artifact for `target` must be exact on."""
    resolved = resolve_target(target)
    return CPU_CLASSES if resolved == "portable" else (resolved,)
