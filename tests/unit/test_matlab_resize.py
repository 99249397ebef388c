"""MATLAB imresize (bicubic) against values derived by hand from MATLAB's definitions, not from the code:
Keys' cubic kernel with a = -0.5,
    W(x) = 1.5|x|^3 - 2.5|x|^2 + 1             for |x| <= 1
         = -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2     for 1 < |x| <= 2,
output sample u (1-based) centred on input coordinate x = u/s + (1 - 1/s)/2, antialiasing for s < 1 (the kernel
stretched to s*W(s*x) and the weights normalised), and 'symmetric' borders (index i outside 1..n reads the
mirror [1..n, n..1]). Every expected value below is a multiple of 2^-8 or 2^-10: exact in binary.
"""
import numpy as np
import pytest

from src.protocol.matlab_functions import imresize

# W at the four distances of a x2 upscale's taps: x = u/2 + 1/4 lies 1/4 or 3/4 past an input sample
W_025 = 1.5 / 64 - 2.5 / 16 + 1          # W(0.25) = 0.8671875
W_075 = 1.5 * 27 / 64 - 2.5 * 9 / 16 + 1  # W(0.75) = 0.2265625
W_125 = -0.5 * 125 / 64 + 2.5 * 25 / 16 - 4 * 1.25 + 2  # W(1.25) = -0.0703125
W_175 = -0.5 * 343 / 64 + 2.5 * 49 / 16 - 4 * 1.75 + 2  # W(1.75) = -0.0234375


def test_hand_derived_weights_sum_to_one():
    assert (W_025, W_075, W_125, W_175) == (0.8671875, 0.2265625, -0.0703125, -0.0234375)
    assert W_025 + W_075 + W_125 + W_175 == 1.0


def row(values):
    """A 1 x n image: resizing its single row by s gives ceil(s) identical rows (every tap of the row axis reads
    row 1, mirrored), each the 1-D resize of the values."""
    return np.asarray(values, dtype=np.float64)[None, :]


def test_x2_impulse_response_is_the_cubic_kernel():
    # input 1-based samples 1..12 with an impulse at 6; output sample u centred at x = u/2 + 1/4
    out = imresize(row(np.eye(12)[5]), 2)
    assert out.shape == (2, 24)
    np.testing.assert_array_equal(out[0], out[1])
    # x - 6 for u = 8..15: -1.75, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 1.75
    expected = np.zeros(24)
    expected[7:15] = [W_175, W_125, W_075, W_025, W_025, W_075, W_125, W_175]
    np.testing.assert_array_equal(out[0], expected)


def test_half_size_impulse_response_is_the_stretched_kernel():
    # s = 1/2: x = 2u - 1/2, kernel 0.5 * W(x/2) over 8 taps at distances 0.5, 1.5, 2.5, 3.5 (the x2 weights
    # halved; they sum to 1, so normalising changes nothing)
    out = imresize(row(np.eye(16)[7]), 0.5)
    assert out.shape == (1, 8)
    # impulse at sample 8: from x = 2u - 1/2 the distances are 6.5, 4.5, 2.5, 0.5, 1.5, 3.5, 5.5, 7.5
    expected = 0.5 * np.array([0, 0, W_125, W_025, W_075, W_175, 0, 0])
    np.testing.assert_array_equal(out[0], expected)


def test_symmetric_border_of_a_x2_upscale():
    # u = 1: x = 0.75, taps at samples -1, 0, 1, 2 (W(1.75), W(0.75), W(0.25), W(1.25)); samples -1 and 0 read
    # the mirror, samples 2 and 1. So out[1] = (W_075 + W_025) s1 + (W_175 + W_125) s2 = 1.09375 s1 - 0.09375 s2
    first = imresize(row([1, 0, 0, 0, 0, 0]), 2)[0]
    second = imresize(row([0, 1, 0, 0, 0, 0]), 2)[0]
    assert (first[0], second[0]) == (1.09375, -0.09375)
    # and the last output mirrors the first: the same weights on s6 and s5
    assert imresize(row([0, 0, 0, 0, 0, 1]), 2)[0][-1] == 1.09375
    assert imresize(row([0, 0, 0, 0, 1, 0]), 2)[0][-1] == -0.09375


def test_a_linear_ramp_stays_linear_inside():
    # Keys' kernel reproduces polynomials up to degree 2 away from the borders: a ramp k -> k upscaled by 2
    # samples the ramp at x = u/2 + 1/4
    out = imresize(row(np.arange(1, 21)), 2)[0]
    u = np.arange(1, 41)
    np.testing.assert_allclose(out[4:-4], (u / 2 + 0.25)[4:-4], rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 10), (6, 6, 3)])
def test_constant_images_stay_constant(scale, shape):
    out = imresize(np.full(shape, 77.25), scale)
    np.testing.assert_allclose(out, 77.25, rtol=0, atol=1e-12)
    assert out.shape == (int(np.ceil(shape[0] * scale)), int(np.ceil(shape[1] * scale))) + shape[2:]


def test_output_size_is_matlab_ceil_and_uint8_rounds_half_away():
    assert imresize(np.zeros((7, 10)), 1 / 3).shape == (3, 4)
    assert imresize(np.zeros((7, 10)), output_shape=(5, 9)).shape == (5, 9)
    # uint8 in, uint8 out: the impulse response 255 * weights rounded (0.8671875 * 255 = 221.13 -> 221,
    # -0.0703125 * 255 = -17.9 -> 0, saturated)
    out = imresize(np.eye(12, dtype=np.uint8)[5][None, :] * 255, 2)
    assert out.dtype == np.uint8
    assert out[0, 7:15].tolist() == [0, 0, 58, 221, 221, 58, 0, 0]  # 0.2265625 * 255 = 57.77 -> 58
    assert imresize(np.full((4, 4), 200, np.uint8), 3).tolist() == np.full((12, 12), 200).tolist()


@pytest.mark.parametrize("bad", [dict(scale=0), dict(scale=-2), dict(output_shape=(0, 4)),
                                 dict(scale=2, output_shape=(8, 8)), dict()])
def test_bad_arguments_are_value_errors(bad):
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), **bad)
