"""rgb2ycbcr against the BT.601 studio-range formula written out here, and PSNR / SSIM against their formulas on
images built by hand."""
import math

import numpy as np
import pytest

from src.protocol.matlab_functions import rgb2y, rgb2ycbcr, ycbcr2rgb
from src.protocol.metrics import PSNR_IDENTICAL, psnr, ssim


def bt601(r, g, b):
    """ITU-R BT.601 YCbCr in 0..255 units for 8-bit RGB (MATLAB's rgb2ycbcr before rounding)."""
    return (16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255,
            128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255,
            128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255)


# (RGB, YCbCr rounded half away from zero, as MATLAB's uint8), the YCbCr worked out by hand from bt601
KNOWN = [
    ((0, 0, 0), (16, 128, 128)),
    ((255, 255, 255), (235, 128, 128)),
    ((255, 0, 0), (81, 90, 240)),      # 81.481, 90.203, 240
    ((0, 255, 0), (145, 54, 34)),      # 144.553, 53.797, 34.214
    ((0, 0, 255), (41, 240, 110)),     # 40.966, 240, 109.786
    ((128, 128, 128), (126, 128, 128)),  # 16 + 219 * 128 / 255 = 125.93
]


@pytest.mark.parametrize("rgb, ycbcr", KNOWN)
def test_rgb2ycbcr_known_triples(rgb, ycbcr):
    assert tuple(math.floor(v + 0.5) for v in bt601(*rgb)) == ycbcr  # the table is the formula
    pixel = np.array([[rgb]], dtype=np.uint8)
    assert tuple(rgb2ycbcr(pixel)[0, 0].tolist()) == ycbcr
    assert rgb2y(pixel)[0, 0] == ycbcr[0]


def test_rgb2ycbcr_of_a_random_image_is_the_formula_rounded():
    rgb = np.random.default_rng(3).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    expected = np.floor(np.stack(bt601(r, g, b), axis=-1) + 0.5)
    np.testing.assert_array_equal(rgb2ycbcr(rgb), expected)


def test_ycbcr2rgb_inverts_the_primaries():
    for rgb, ycbcr in KNOWN:
        back = ycbcr2rgb(np.array([[ycbcr]], dtype=np.uint8))[0, 0].astype(int)
        assert np.abs(back - np.array(rgb)).max() <= 2, (rgb, back)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8),
                                 np.zeros((4, 4, 4), np.uint8)])
def test_rgb2ycbcr_wants_uint8_rgb(bad):
    with pytest.raises(ValueError):
        rgb2ycbcr(bad)


def test_psnr_of_a_hand_built_difference():
    a = np.full((10, 10), 100, np.uint8)
    b = a.copy()
    b[0, :] = 110  # 10 of 100 pixels off by 10: MSE = 10
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 10), abs=1e-12)
    b = a + 1  # every pixel off by 1: MSE = 1
    assert psnr(a, b) == pytest.approx(20 * math.log10(255), abs=1e-12)


def test_psnr_shaves_the_border():
    a = np.full((12, 12), 50, np.uint8)
    b = a.copy()
    b[:2, :] = 0
    b[:, -2:] = 255  # the damage is all within 2 pixels of the border
    assert psnr(a, b, shave_border=2) == PSNR_IDENTICAL == 100.0
    b = a.copy()
    b[2, 2:10] = 54  # the first row left by the shave: 8 of its 64 pixels off by 4, MSE = 8 * 16 / 64
    assert psnr(a, b, shave_border=2) == pytest.approx(10 * math.log10(255 ** 2 / (8 * 16 / 64)), abs=1e-12)


def test_ssim_of_identical_images_is_one():
    img = np.random.default_rng(4).integers(0, 256, (20, 23), dtype=np.uint8)
    assert ssim(img, img) == 1.0
    assert ssim(img, img, shave_border=3) == 1.0


def test_ssim_of_two_constant_images_is_the_luminance_term():
    # constant images: sigmas are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 255)^2
    a, b, c1 = 100.0, 110.0, (0.01 * 255) ** 2
    value = ssim(np.full((15, 15), a), np.full((15, 15), b))
    assert value == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-12)


def test_metrics_refuse_mismatched_or_too_small_images():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="nothing left"):
        psnr(np.zeros((4, 4)), np.zeros((4, 4)), shave_border=2)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((12, 12)), np.zeros((12, 12)), shave_border=1)
