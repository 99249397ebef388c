"""Property-based checks of the MATLAB functions and metrics over arbitrary sizes, scales and values."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from src.protocol.matlab_functions import imresize, rgb2ycbcr, ycbcr2rgb
from src.protocol.metrics import psnr, ssim

SETTINGS = settings(max_examples=50, deadline=None)
SCALES = st.sampled_from([1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
SIDES = st.integers(min_value=4, max_value=40)

# Per 1-D pass the negative lobes of the (normalised) cubic weights sum to at most 0.125 (phase 1/2), so a
# pass widens the value range by at most 2 * 0.125; two passes by (1.25)^2 - 1 < 0.6, i.e. < 0.3 per side.
OVERSHOOT_PER_SIDE = 0.3


def _float_images(channels=None):
    def build(shape):
        shape = shape if channels is None else shape + (channels,)
        return arrays(np.float64, shape, elements=st.floats(-100, 100, allow_nan=False, width=64))
    return st.tuples(SIDES, SIDES).flatmap(build)


def _uint8_images():
    return st.tuples(st.integers(11, 30), st.integers(11, 30)).flatmap(
        lambda shape: arrays(np.uint8, shape, elements=st.integers(0, 255)))


@SETTINGS
@given(img=_float_images(), scale=SCALES)
def test_imresize_shape_and_bounded_overshoot(img, scale):
    out = imresize(img, scale)
    assert out.shape == (math.ceil(img.shape[0] * scale), math.ceil(img.shape[1] * scale))
    assert out.dtype == np.float64
    low, high = img.min(), img.max()
    margin = OVERSHOOT_PER_SIDE * (high - low) + 1e-9 * max(1.0, abs(low), abs(high))
    assert out.min() >= low - margin
    assert out.max() <= high + margin


@SETTINGS
@given(shape=st.tuples(SIDES, SIDES), value=st.floats(-1e3, 1e3, allow_nan=False), scale=SCALES,
       channels=st.sampled_from([None, 1, 3]))
def test_imresize_preserves_constant_images(shape, value, scale, channels):
    full_shape = shape if channels is None else shape + (channels,)
    out = imresize(np.full(full_shape, value), scale)
    np.testing.assert_allclose(out, value, rtol=0, atol=1e-12 * max(1.0, abs(value)))
    assert out.shape[2:] == full_shape[2:]


@SETTINGS
@given(rgb=st.tuples(SIDES, SIDES).flatmap(lambda shape: arrays(np.uint8, shape + (3,),
                                                                  elements=st.integers(0, 255))))
def test_rgb2ycbcr_round_trip_within_two_levels(rgb):
    ycbcr = rgb2ycbcr(rgb)
    assert ycbcr[..., 0].min() >= 16 and ycbcr[..., 0].max() <= 235
    assert ycbcr[..., 1:].min() >= 16 and ycbcr[..., 1:].max() <= 240
    back = ycbcr2rgb(ycbcr)
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 2


@SETTINGS
@given(img1=_uint8_images(), seed=st.integers(0, 2 ** 32 - 1), shave_border=st.integers(0, 3))
def test_psnr_identical_and_symmetric(img1, seed, shave_border):
    img2 = np.random.default_rng(seed).integers(0, 256, img1.shape, dtype=np.uint8)
    assert psnr(img1, img1, shave_border) == 100.0
    assert psnr(img1, img2, shave_border) == psnr(img2, img1, shave_border)
    assert psnr(img1, img2) <= 100.0


@SETTINGS
@given(img1=_uint8_images(), seed=st.integers(0, 2 ** 32 - 1))
def test_ssim_identical_is_one_and_symmetric(img1, seed):
    img2 = np.random.default_rng(seed).integers(0, 256, img1.shape, dtype=np.uint8)
    assert ssim(img1, img1) == 1.0
    assert abs(ssim(img1, img2) - ssim(img2, img1)) <= 1e-12
    assert ssim(img1, img2) <= 1.0
