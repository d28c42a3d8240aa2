"""Targets: which CPU class an int8 artifact must be exact on, and the weight format that follows."""

import pytest

from edgecompress.core.errors import UserError
from edgecompress.runtime.targets import CPU_CLASSES, DEFAULT_TARGET, classes_of, host_cpu, int8_format, resolve_target


def test_the_default_target_is_portable_and_portable_means_every_class():
    assert DEFAULT_TARGET == "portable"
    assert classes_of("portable") == CPU_CLASSES == ("x86-avx2", "x86-vnni", "arm64")


def test_weights_stay_within_64_wherever_avx2_pairs_saturate():
    # 255 * 64 * 2 = 32,640 fits a 16-bit pair sum; 255 * 127 * 2 = 64,770 does not
    assert int8_format("portable").weight_max == int8_format("x86-avx2").weight_max == 64
    assert int8_format("x86-vnni").weight_max == int8_format("arm64").weight_max == 127
    assert 255 * int8_format("portable").weight_max * 2 <= 32767 < 255 * 127 * 2


def test_auto_is_this_machine_and_this_machine_has_a_class():
    host = host_cpu()
    assert host.cpu_class in CPU_CLASSES
    assert resolve_target("auto") == host.cpu_class
    assert ("avx512_vnni" in host.flags or "avx_vnni" in host.flags) == (host.cpu_class == "x86-vnni") or host.cpu_class == "arm64"


def test_an_unknown_target_is_refused_with_the_choices():
    with pytest.raises(UserError, match=r"^target: got 'x86'; choose one of portable, auto, x86-avx2, x86-vnni, arm64"):
        resolve_target("x86")
