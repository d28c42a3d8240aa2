from edgecompress.core.models import DigitsCNN
from edgecompress.inspect import advise_target_size, layer_table


def _table():
    return layer_table(DigitsCNN(), (1, 1, 8, 8))


def test_largest_layer_is_cut_first_and_only_as_far_as_needed():
    advice = advise_target_size(_table(), 150_000)  # 212,008 B now: 62,008 B too many
    assert [c.name for c in advice.cuts] == ["fc1"]
    assert advice.cuts[0].bytes_now == 131_584
    assert advice.cuts[0].bytes_after == 131_584 - 62_008
    assert advice.reachable and not advice.fits_already


def test_tight_target_cuts_the_next_largest_after_the_first_reaches_its_floor():
    advice = advise_target_size(_table(), 50_000)
    fc1, conv2 = advice.cuts
    assert fc1.name == "fc1" and fc1.bytes_after == 131_584 - int(131_584 * 0.9)
    assert conv2.name == "conv2"
    after = 212_008 - sum(c.bytes_now - c.bytes_after for c in advice.cuts)
    assert after == 50_000


def test_int8_alone_fits_when_one_byte_per_weight_plus_scales_fits():
    # 53,002 int8 weights + a float32 scale per output channel (32 + 64 + 128 + 10 channels)
    expected = 53_002 + 4 * (32 + 64 + 128 + 10)
    assert advise_target_size(_table(), expected).int8_fits
    assert not advise_target_size(_table(), expected - 1).int8_fits
    assert advise_target_size(_table(), 50_000).int8_bytes == expected


def test_unreachable_target_says_so():
    advice = advise_target_size(_table(), 1_000)
    assert not advice.reachable
    assert len(advice.cuts) == 4 and all(abs(c.keep_fraction - 0.1) < 0.01 for c in advice.cuts)


def test_model_that_fits_needs_no_cuts():
    advice = advise_target_size(_table(), 300_000)
    assert advice.fits_already and advice.cuts == []
