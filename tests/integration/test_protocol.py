"""Unit tests of the framework-free evaluation protocol: MATLAB functions, protocol steps, metrics, I/O."""
import json
import math
import os
import select
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from src.protocol.comparison import save_scored_images
from src.protocol.degradation import (
    degrade,
    image_to_y,
    modcrop,
    prepare_pair,
    shave,
    to_uint8,
)
from src.protocol.image_io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    list_images,
    read_image,
    write_image,
)
from src.protocol.matlab_functions import imresize, rgb2y, rgb2ycbcr, ycbcr2rgb
from src.protocol.metrics import psnr, ssim
from src.protocol.report import format_table, result_line, write_json
from src.protocol.scoring import (
    ImageSizeError,
    evaluate,
    iter_images,
    score_image,
    summarize,
)
from src.utils.errors import UserError
from src.utils.progress import progress

# ----------------------------------------------------------------------------------------------------------
# A slow, literal port of MATLAB's imresize (contributions() + resizeAlongDim), used as an independent
# reference for the vectorised implementation. Indices are 1-based as in MATLAB.

def _matlab_cubic(x):
    absx = abs(x)
    if absx <= 1:
        return 1.5 * absx ** 3 - 2.5 * absx ** 2 + 1
    if absx <= 2:
        return -0.5 * absx ** 3 + 2.5 * absx ** 2 - 4 * absx + 2
    return 0.0


def _matlab_contributions(in_length, out_length, scale):
    if scale < 1:
        def h(x):
            return scale * _matlab_cubic(scale * x)
        kernel_width = 4 / scale
    else:
        h = _matlab_cubic
        kernel_width = 4.0
    aux = list(range(1, in_length + 1)) + list(range(in_length, 0, -1))
    weights, indices = [], []
    for x in range(1, out_length + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - kernel_width / 2)
        taps = math.ceil(kernel_width) + 2
        row_indices = [left + j for j in range(taps)]
        row_weights = [h(u - i) for i in row_indices]
        total = sum(row_weights)
        weights.append([w / total for w in row_weights])
        indices.append([aux[(i - 1) % len(aux)] for i in row_indices])
    # MATLAB drops the columns whose weights are all zero.
    keep = [j for j in range(len(weights[0])) if any(row[j] != 0 for row in weights)]
    weights = [[row[j] for j in keep] for row in weights]
    indices = [[row[j] for j in keep] for row in indices]
    return weights, indices


def _reference_imresize(img, scale=None, output_shape=None):
    img = np.asarray(img, dtype=np.float64)
    if output_shape is not None:
        out_shape = list(output_shape[:2])
        scales = [out_shape[0] / img.shape[0], out_shape[1] / img.shape[1]]
    else:
        scales = [scale, scale]
        out_shape = [math.ceil(scale * img.shape[0]), math.ceil(scale * img.shape[1])]
    order = [0, 1] if scales[0] <= scales[1] else [1, 0]
    out = img
    for dim in order:
        weights, indices = _matlab_contributions(out.shape[dim], out_shape[dim], scales[dim])
        moved = np.moveaxis(out, dim, 0)
        result = np.zeros((out_shape[dim],) + moved.shape[1:])
        for o in range(out_shape[dim]):
            for w, i in zip(weights[o], indices[o]):
                result[o] += w * moved[i - 1]
        out = np.moveaxis(result, 0, dim)
    return out


# ----------------------------------------------------------------------------------------------------------
# imresize

@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_imresize_constant_image_stays_constant(scale):
    img = np.full((12, 9), 0.3712)
    out = imresize(img, scale)
    assert out.shape == (math.ceil(12 * scale), math.ceil(9 * scale))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, 0.3712, atol=1e-12)


def test_imresize_hand_computed_upscale_border_value():
    # x2, first output sample: u = 0.75, taps at 2.75 .. -2.25 give weights
    # (0, -0.0234375, 0.2265625, 0.8671875, -0.0703125, 0); mirrored indices (2, 1, 1, 2) ->
    # 1.09375 * a - 0.09375 * b. For [1 2 3 4] that is 0.90625 (MATLAB: imresize(1:4, 2) starts 0.9063).
    out = imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), 2)
    assert out.shape == (2, 8)
    assert out[0, 0] == pytest.approx(0.90625, abs=1e-12)
    assert out[1, 0] == pytest.approx(0.90625, abs=1e-12)


def test_imresize_hand_computed_downscale_border_value():
    # x1/2 with antialiasing: h(x) = k(x/2)/2, width 8; first sample u = 1.5 reads mirrored
    # c b a | a b c d e with weights -0.01171875 -0.03515625 0.11328125 0.43359375 (and mirrored).
    ramp = np.arange(1.0, 17.0)[None, :].repeat(4, axis=0)
    out = imresize(ramp, 0.5)
    assert out.shape == (2, 8)
    assert out[0, 0] == pytest.approx(1.44921875, abs=1e-12)
    # Samples whose 8-wide window stays inside the image keep the ramp: output x maps to u = 2x - 0.5.
    np.testing.assert_allclose(out[0, 2:6], [5.5, 7.5, 9.5, 11.5], atol=1e-12)


def test_imresize_ramp_interior_stays_linear_when_upscaling():
    ramp = np.tile(np.arange(1.0, 21.0), (3, 1))  # value == 1-based column index
    for scale in (2, 3, 4):
        out = imresize(ramp, scale)
        x = np.arange(1, out.shape[1] + 1)
        u = x / scale + 0.5 * (1 - 1 / scale)
        interior = (u >= 3) & (u <= 18)  # away from the mirrored borders
        np.testing.assert_allclose(out[1, interior], u[interior], atol=1e-12)


@pytest.mark.parametrize("shape,scale", [
    ((7, 5), 2), ((7, 5), 3), ((6, 9), 4), ((13, 11), 1 / 2), ((13, 11), 1 / 3), ((17, 12), 1 / 4),
    ((9, 10), 0.7), ((5, 8), 1.5), ((4, 4), 1 / 4), ((1, 6), 2), ((6, 1), 1 / 3),
])
def test_imresize_matches_slow_matlab_reference(shape, scale):
    rng = np.random.default_rng(hash(shape) % 2 ** 32)
    img = rng.random(shape)
    np.testing.assert_allclose(imresize(img, scale), _reference_imresize(img, scale), rtol=0, atol=1e-12)


def test_imresize_output_shape_with_different_axis_scales_matches_reference():
    # Width shrinks (0.5) and height grows (1.4): MATLAB resizes the width first.
    rng = np.random.default_rng(3)
    img = rng.random((10, 16))
    out = imresize(img, output_shape=(14, 8))
    assert out.shape == (14, 8)
    np.testing.assert_allclose(out, _reference_imresize(img, output_shape=(14, 8)), atol=1e-12)


def test_imresize_colour_image_resizes_each_channel():
    rng = np.random.default_rng(4)
    img = rng.random((9, 7, 3))
    out = imresize(img, 1 / 3)
    assert out.shape == (3, 3, 3)
    for channel in range(3):
        np.testing.assert_allclose(out[..., channel], _reference_imresize(img[..., channel], 1 / 3), atol=1e-12)


def test_imresize_uint8_rounds_and_saturates_like_matlab():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    img[0:3, 0:3] = 255  # overshoot at a bright corner must saturate
    out = imresize(img, 2)
    assert out.dtype == np.uint8
    expected = np.clip(np.floor(_reference_imresize(img, 2) + 0.5), 0, 255)
    np.testing.assert_array_equal(out, expected)


def test_imresize_float_output_is_neither_rounded_nor_clipped():
    img = np.zeros((8, 8))
    img[3:5, 3:5] = 1.0
    out = imresize(img, 2)
    assert out.max() > 1.0 and out.min() < 0.0  # bicubic overshoot is kept


def test_imresize_rejects_bad_arguments():
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 2, output_shape=(8, 8))
    with pytest.raises(ValueError):
        imresize(np.zeros(4), 2)


# ----------------------------------------------------------------------------------------------------------
# colour conversion

@pytest.mark.parametrize("rgb,ycbcr", [
    ((255, 255, 255), (235, 128, 128)),
    ((0, 0, 0), (16, 128, 128)),
    ((255, 0, 0), (81, 90, 240)),
    ((0, 255, 0), (145, 54, 34)),
    ((0, 0, 255), (41, 240, 110)),
])
def test_rgb2ycbcr_matlab_constants(rgb, ycbcr):
    img = np.array(rgb, dtype=np.uint8).reshape(1, 1, 3)
    out = rgb2ycbcr(img)
    assert out.dtype == np.uint8
    assert tuple(int(v) for v in out[0, 0]) == ycbcr
    assert int(rgb2y(img)[0, 0]) == ycbcr[0]


def test_rgb2y_equals_first_channel_of_rgb2ycbcr():
    img = np.random.default_rng(7).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    y = rgb2y(img)
    assert y.shape == (20, 30) and y.dtype == np.uint8
    np.testing.assert_array_equal(y, rgb2ycbcr(img)[..., 0])


def test_rgb2ycbcr_rejects_non_uint8_rgb():
    with pytest.raises(ValueError):
        rgb2ycbcr(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError):
        rgb2y(np.zeros((2, 2), dtype=np.uint8))


def test_ycbcr2rgb_inverts_extremes_and_accepts_float_on_unit_scale():
    ycbcr = np.array([[[235, 128, 128], [16, 128, 128], [81, 90, 240]]], dtype=np.uint8)
    rgb = ycbcr2rgb(ycbcr)
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(rgb[0, 1], [0, 0, 0])
    np.testing.assert_allclose(rgb[0, 2], [255, 0, 0], atol=1)
    np.testing.assert_array_equal(ycbcr2rgb(ycbcr / 255.0), rgb)
    with pytest.raises(ValueError):
        ycbcr2rgb(ycbcr.astype(np.float64))  # 0..255 floats are a scale mistake


# ----------------------------------------------------------------------------------------------------------
# protocol steps

def test_modcrop_crops_top_left_without_resizing():
    img = np.arange(13 * 17 * 3).reshape(13, 17, 3)
    out = modcrop(img, 3)
    assert out.shape == (12, 15, 3)
    np.testing.assert_array_equal(out, img[:12, :15])
    assert modcrop(img[:12, :16], 4).shape == (12, 16, 3)


def test_image_to_y_keeps_single_channel_and_converts_rgb():
    gray = np.random.default_rng(8).integers(0, 256, (9, 7), dtype=np.uint8)
    assert image_to_y(gray) is gray
    np.testing.assert_array_equal(image_to_y(gray[..., None]), gray)
    rgb = np.random.default_rng(9).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_y(rgb), rgb2y(rgb))
    with pytest.raises(ValueError):
        image_to_y(rgb.astype(np.float32))


def test_degrade_is_float_down_up_without_rounding():
    hr_y = np.random.default_rng(10).integers(0, 256, (24, 18), dtype=np.uint8)
    lr_up = degrade(hr_y, 3)
    assert lr_up.dtype == np.float32 and lr_up.shape == hr_y.shape
    expected = imresize(imresize(hr_y / 255.0, 1 / 3), 3)
    np.testing.assert_allclose(lr_up, expected.astype(np.float32), rtol=0, atol=0)


def test_prepare_pair_modcrops_then_takes_y():
    img = np.random.default_rng(11).integers(0, 256, (25, 31, 3), dtype=np.uint8)
    hr_y, lr_up = prepare_pair(img, 4)
    assert hr_y.shape == lr_up.shape == (24, 28)
    np.testing.assert_array_equal(hr_y, rgb2y(img[:24, :28]))
    np.testing.assert_array_equal(lr_up, degrade(hr_y, 4))


def test_to_uint8_rounds_half_up_and_saturates():
    values = np.array([0.49 / 255, 0.5 / 255, 1.5 / 255, 254.5 / 255, -0.1, 1.2, np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(to_uint8(values), [0, 1, 2, 255, 0, 255, 0, 255, 0])
    assert to_uint8(values).dtype == np.uint8


def test_shave_drops_border_on_every_side():
    img = np.arange(100).reshape(10, 10)
    np.testing.assert_array_equal(shave(img, 3), img[3:7, 3:7])
    assert shave(img, 0) is img


# ----------------------------------------------------------------------------------------------------------
# metrics

def _reference_ssim(img1, img2):
    """ssim_index.m, literally: fspecial window, 2-D 'valid' filter2, default constants."""
    x, y = np.meshgrid(np.arange(-5, 6), np.arange(-5, 6))
    window = np.exp(-(x * x + y * y) / (2 * 1.5 ** 2))
    window[window < np.finfo(float).eps * window.max()] = 0
    window /= window.sum()
    img1, img2 = img1.astype(np.float64), img2.astype(np.float64)
    rows, cols = img1.shape[0] - 10, img1.shape[1] - 10

    def filter_valid(a):
        out = np.zeros((rows, cols))
        for i in range(11):
            for j in range(11):
                out += window[i, j] * a[i:i + rows, j:j + cols]
        return out

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filter_valid(img1), filter_valid(img2)
    sigma1_sq = filter_valid(img1 * img1) - mu1 * mu1
    sigma2_sq = filter_valid(img2 * img2) - mu2 * mu2
    sigma12 = filter_valid(img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * sigma12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (sigma1_sq + sigma2_sq + c2))
    return ssim_map.mean()


def test_psnr_identical_is_capped_at_100():
    img = np.random.default_rng(12).integers(0, 256, (16, 16), dtype=np.uint8)
    assert psnr(img, img) == 100.0


def test_psnr_of_known_mse():
    a = np.zeros((10, 10), dtype=np.uint8)
    b = np.full((10, 10), 2, dtype=np.uint8)  # MSE 4 -> 20 log10(255 / 2)
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 2), abs=1e-12)
    c = np.full((10, 10), 255, dtype=np.uint8)  # uint8 wrap-around must not happen: MSE 255^2 -> 0 dB
    assert psnr(a, c) == pytest.approx(0.0, abs=1e-12)


def test_psnr_and_ssim_shave_the_border():
    rng = np.random.default_rng(13)
    a = rng.integers(0, 256, (30, 30), dtype=np.uint8)
    b = a.copy()
    b[:2, :] = 0
    b[:, -2:] = 255
    assert psnr(a, b) < 100.0
    assert psnr(a, b, shave_border=2) == 100.0
    assert ssim(a, b, shave_border=2) == 1.0


def test_ssim_identical_is_one_and_matches_reference():
    rng = np.random.default_rng(14)
    a = rng.integers(0, 256, (40, 33), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a) == 1.0
    assert ssim(a, noisy) == pytest.approx(_reference_ssim(a, noisy), abs=1e-12)
    assert ssim(a, noisy, shave_border=3) == pytest.approx(_reference_ssim(a[3:-3, 3:-3], noisy[3:-3, 3:-3]),
                                                           abs=1e-12)
    assert ssim(a, noisy) < 1.0


def test_metrics_reject_shape_mismatch():
    a = np.zeros((20, 20), dtype=np.uint8)
    with pytest.raises(ValueError):
        psnr(a, a[:19])
    with pytest.raises(ValueError):
        ssim(a, a[:, :19])


# ----------------------------------------------------------------------------------------------------------
# image_io

def _save(path, img):
    img.save(path)
    return path


def test_read_image_8bit_gray_and_rgb(tmp_path):
    gray = np.random.default_rng(15).integers(0, 256, (5, 7), dtype=np.uint8)
    out = read_image(_save(tmp_path / "g.png", Image.fromarray(gray)))
    assert out.dtype == np.uint8 and out.shape == (5, 7)
    np.testing.assert_array_equal(out, gray)
    rgb = np.random.default_rng(16).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(_save(tmp_path / "c.bmp", Image.fromarray(rgb))), rgb)


def test_read_image_16bit_gray_png_and_tiff(tmp_path):
    values = np.array([[0, 128, 129, 257, 385, 386], [1000, 30000, 65279, 65407, 65408, 65535]], dtype=np.uint16)
    expected = np.floor(values / 257 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(expected[0], [0, 0, 1, 1, 1, 2])
    png = _save(tmp_path / "g16.png", Image.fromarray(values))  # mode I;16
    np.testing.assert_array_equal(read_image(png), expected)
    tif = _save(tmp_path / "g16b.tif", Image.fromarray(values.astype(">u2")))  # mode I;16B
    assert Image.open(tif).mode == "I;16B"
    np.testing.assert_array_equal(read_image(tif), expected)
    tif32 = _save(tmp_path / "gi.tif", Image.fromarray(values.astype(np.int32)))  # mode I
    assert Image.open(tif32).mode == "I"
    np.testing.assert_array_equal(read_image(tif32), expected)


def test_read_image_16bit_rgb_png(tmp_path):
    rgb16 = np.random.default_rng(17).integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    out = read_image(path)
    assert out.shape == (6, 5, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.floor(rgb16 / 257 + 0.5).astype(np.uint8))
    rgba16 = np.dstack([rgb16, np.full(rgb16.shape[:2], 65535, np.uint16)])
    assert cv2.imwrite(str(tmp_path / "rgba16.png"), rgba16[..., [2, 1, 0, 3]])
    np.testing.assert_array_equal(read_image(tmp_path / "rgba16.png"), out)


def _png_bytes(width, height, bit_depth, colour_type, pixels_be):
    """A minimal PNG (no filtering) from big-endian pixel bytes, for formats the writers cannot produce."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = len(pixels_be) // height
    raw = b"".join(b"\x00" + pixels_be[r * row:(r + 1) * row] for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_read_image_16bit_gray_alpha_png(tmp_path):
    # Pillow opens 16-bit gray+alpha as 8-bit 'RGBA'; it must come back as one 16->8-bit gray channel.
    gray = np.random.default_rng(25).integers(0, 65536, (4, 5), dtype=np.uint16)
    alpha = np.full_like(gray, 1234)
    path = tmp_path / "la16.png"
    path.write_bytes(_png_bytes(5, 4, 16, 4, np.dstack([gray, alpha]).astype(">u2").tobytes()))
    out = read_image(path)
    assert out.shape == (4, 5)
    np.testing.assert_array_equal(out, np.floor(gray / 257 + 0.5).astype(np.uint8))


def test_read_image_palette_colour_and_gray(tmp_path):
    rgb = np.random.default_rng(18).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    palette_image = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    path = _save(tmp_path / "p.png", palette_image)
    out = read_image(path)
    assert out.shape == (8, 8, 3)
    np.testing.assert_array_equal(out, np.asarray(palette_image.convert("RGB")))

    gray = np.random.default_rng(19).integers(0, 256, (8, 8), dtype=np.uint8)
    gray_palette = Image.fromarray(gray).convert("P")
    gray_palette.putpalette([v for level in range(256) for v in (level, level, level)])
    path = _save(tmp_path / "pg.png", gray_palette)
    assert Image.open(path).mode == "P"
    out = read_image(path)
    assert out.shape == (8, 8)
    np.testing.assert_array_equal(out, np.asarray(gray_palette.convert("L")))


def test_read_image_drops_alpha(tmp_path):
    rgba = np.random.default_rng(20).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(_save(tmp_path / "a.png", Image.fromarray(rgba))), rgba[..., :3])
    la = Image.merge("LA", [Image.fromarray(rgba[..., 0].copy()), Image.fromarray(rgba[..., 1].copy())])
    out = read_image(_save(tmp_path / "la.png", la))
    assert out.shape == (4, 6)
    np.testing.assert_array_equal(out, rgba[..., 0])


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_read_image_cmyk(tmp_path, suffix):
    cmyk = Image.new("CMYK", (5, 4), (10, 200, 30, 40))
    path = _save(tmp_path / f"cmyk{suffix}", cmyk)
    assert Image.open(path).mode == "CMYK"
    out = read_image(path)
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out.astype(int), np.asarray(cmyk.convert("RGB")).astype(int), atol=3)


def test_read_image_one_bit(tmp_path):
    bits = np.random.default_rng(21).integers(0, 2, (5, 9)).astype(bool)
    path = _save(tmp_path / "b.png", Image.fromarray(bits))
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(read_image(path), bits.astype(np.uint8) * 255)


def _assert_unreadable(path, reason_word):
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert message.startswith(f"{path}: not a readable image (")
    assert reason_word in message
    assert "\n" not in message


def test_read_image_rejects_bad_files_naming_them(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    _assert_unreadable(empty, "empty")

    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    _assert_unreadable(text, "unrecognised")

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(22).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _assert_unreadable(truncated, "trunc")

    _assert_unreadable(tmp_path / "missing.png", "no such file")


def test_list_images_sorted_recursive_case_insensitive(tmp_path):
    img = Image.new("L", (4, 4))
    for name in ("b.png", "a.PNG", "sub/c.jpg", "sub/deeper/d.tiff", "z.txt", ".hidden.png", ".cache/e.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            (tmp_path / name).write_text("x")
        else:
            img.save(tmp_path / name, format="PNG")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a.PNG", "b.png", "sub/c.jpg", "sub/deeper/d.tiff"]
    flat = [p.name for p in list_images(tmp_path, recursive=False)]
    assert flat == ["a.PNG", "b.png"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    assert ".png" in IMAGE_EXTENSIONS and ".bmp" in IMAGE_EXTENSIONS


def test_list_images_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        list_images(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"has no images \(.png, .jpg"):
        list_images(tmp_path / "empty")


def test_write_image_atomic_round_trip(tmp_path):
    img = np.random.default_rng(23).integers(0, 256, (6, 7), dtype=np.uint8)
    path = tmp_path / "out" / "nested" / "x_sr.png"
    write_image(path, img)
    np.testing.assert_array_equal(read_image(path), img)
    assert sorted(p.name for p in path.parent.iterdir()) == ["x_sr.png"]  # no temporary left behind
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(UserError, match="cannot write image"):
        write_image(blocker / "y.png", img)


# ----------------------------------------------------------------------------------------------------------
# progress

def test_progress_is_quiet_without_tty_and_yields_everything(capsys):
    assert list(progress(range(5), desc="x")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""


def test_progress_draws_on_a_real_terminal(monkeypatch):
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        assert list(progress(iter(range(3)), total=3, desc="Set5 x2")) == [0, 1, 2]
    chunks = []  # the bar's redraws may arrive in separate reads
    while select.select([master], [], [], 1.0)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other end is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    text = b"".join(chunks).decode()
    assert "Set5 x2" in text and "3/3" in text and "it/s" in text and "ETA" in text


# ----------------------------------------------------------------------------------------------------------
# evaluation mechanics (the real-data numbers are in test_bicubic_reproduction.py)

def _make_folder(tmp_path):
    rng = np.random.default_rng(24)
    folder = tmp_path / "tiny"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (40, 45, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (33, 30), dtype=np.uint8)).save(folder / "sub" / "b.bmp")
    return folder


def _evaluate(folder, scale, predict, on_image=None):
    skipped = []
    return evaluate(predict, iter_images(folder, scale, skipped, show_progress=False), scale, source=folder,
                    skipped=skipped, on_image=on_image)


def test_evaluate_scores_skips_and_saves(tmp_path, capsys):
    folder = _make_folder(tmp_path)
    (folder / "broken.png").write_text("not an image")
    Image.new("L", (12, 12)).save(folder / "small.png")  # too small for x3 after shaving + SSIM window
    saved = tmp_path / "saved"
    seen = []

    def save(name, img, sr, lr_up, scores):
        seen.append(name)
        save_scored_images(saved, name, 3, img, sr, lr_up, scores)

    result = _evaluate(folder, 3, lambda lr_up, name: lr_up * 1.0, on_image=save)
    err = capsys.readouterr().err
    assert f"warning: skipped {folder / 'broken.png'}: not a readable image (" in err
    assert f"warning: skipped {folder / 'small.png'}: " in err
    assert result["dataset"] == "tiny" and result["scale"] == 3
    assert [image["name"] for image in result["images"]] == ["a", "sub/b"] == seen
    assert result["skipped"] == [str(folder / "broken.png"), str(folder / "small.png")]
    for image in result["images"]:
        assert image["psnr"] == image["bicubic_psnr"] and image["ssim"] == image["bicubic_ssim"]
    assert result["psnr"] == pytest.approx(np.mean([i["psnr"] for i in result["images"]]))
    # an identity model: the saved colour result is the bicubic image (SR Y + degraded Cb/Cr, see test_bad_inputs)
    hr_y, lr_up = prepare_pair(read_image(folder / "a.png"), 3)
    saved_a = read_image(saved / "a_srcnn_x3.png")
    assert saved_a.shape == hr_y.shape + (3,)
    assert np.abs(rgb2ycbcr(saved_a)[..., 0].astype(int) - to_uint8(lr_up)).max() <= 1
    np.testing.assert_array_equal(read_image(saved / "sub" / "b_srcnn_x3.png"), to_uint8(prepare_pair(
        read_image(folder / "sub" / "b.bmp"), 3)[1]))  # gray stays gray: exactly the scored Y
    assert (saved / "a_compare_x3.png").is_file() and (saved / "sub" / "b_compare_x3.png").is_file()

    json.dumps(result)  # plain Python types only


def test_evaluate_errors_name_the_image(tmp_path):
    folder = _make_folder(tmp_path)
    with pytest.raises(UserError, match="^image a of .*tiny: the model returned shape"):
        _evaluate(folder, 2, lambda lr_up, name: lr_up[:-1])

    def static(lr_up, name):
        raise ImageSizeError("the model takes 8x8 only")

    with pytest.raises(UserError, match="^image a of .*tiny: the model takes 8x8 only$"):
        _evaluate(folder, 2, static)
    with pytest.raises(UserError, match=r"^image sub/b of .*tiny: the model output holds 1 NaN/Inf value\(s\)"):
        _evaluate(folder, 2, lambda lr_up, name: np.where(np.arange(lr_up.size).reshape(lr_up.shape) == 0,
                                                         np.nan, lr_up) if name == "sub/b" else lr_up)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"")
    with pytest.raises(UserError, match="no usable images"):
        _evaluate(broken, 2, lambda lr_up, name: lr_up)


def test_score_image_and_summarize_score_outputs_made_elsewhere(tmp_path):
    folder = _make_folder(tmp_path)
    images = []
    for name, img in iter_images(folder, 2, [], show_progress=False):
        hr_y, lr_up = prepare_pair(img, 2)
        sr = np.clip(lr_up + 0.01, -1, 2)  # e.g. an output read back from a file
        images.append({"name": name, **score_image(sr, hr_y, lr_up, 2)})
    result = summarize(images, dataset="tiny", scale=2)
    reference = _evaluate(folder, 2, lambda lr_up, name: np.clip(lr_up + 0.01, -1, 2))
    assert result == reference
    with pytest.raises(ValueError):
        score_image(np.zeros((3, 3)), np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32), 2)


def test_result_line_table_and_json(tmp_path):
    result = {"dataset": "Set5", "scale": 3, "psnr": 36.6612345, "ssim": np.float64(0.954234), "bicubic_psnr": 30.39,
              "bicubic_ssim": 0.8682, "images": [{"name": "baby", "psnr": 36.6612345, "ssim": 0.954234,
                                                  "bicubic_psnr": 30.39, "bicubic_ssim": 0.8682}], "skipped": []}
    assert result_line(result) == "result {'PSNR': 36.66, 'SSIM': 0.9542}"
    table = format_table(result)
    assert "baby" in table and "36.66" in table and "0.9542" in table and "30.39" in table and "0.8682" in table
    assert table.splitlines()[-1].startswith("mean")

    result["ssim"] = 0.954234
    path = tmp_path / "results" / "eval.json"
    write_json(result, path, checkpoint=Path("ckpt/srcnn.ckpt"), step=np.int64(3))
    loaded = json.loads(path.read_text())
    assert loaded["checkpoint"] == "ckpt/srcnn.ckpt" and loaded["step"] == 3 and loaded["psnr"] == 36.6612345
    assert sorted(p.name for p in path.parent.iterdir()) == ["eval.json"]
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(UserError, match="cannot write results file"):
        write_json(result, tmp_path / "blocker" / "eval.json")


def test_framework_free_modules_never_import_mindspore(repo_root):
    modules = ["src.protocol.matlab_functions", "src.protocol.degradation", "src.protocol.metrics",
               "src.protocol.image_io", "src.utils.progress", "src.protocol.scoring", "src.protocol.naming",
               "src.protocol.report", "src.protocol.comparison", "src.infer.base", "src.infer.onnx_backend",
               "src.infer.bin_backend", "src.infer.evaluate_onnx", "src.deploy.ascend310"]
    code = ("import sys\n"
            f"for name in {modules!r}:\n"
            "    __import__(name)\n"
            "heavy = [m for m in ('mindspore', 'scipy', 'cv2', 'onnxruntime') if m in sys.modules]\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
