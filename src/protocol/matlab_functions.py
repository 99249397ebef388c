"""MATLAB-compatible ``imresize`` (bicubic) and ``rgb2ycbcr``/``ycbcr2rgb`` in plain numpy.

SRCNN's published numbers come from MATLAB's image functions, so the benchmark protocol has to reproduce
them exactly: the antialiased bicubic kernel with 'symmetric' borders, and the BT.601 "studio range" colour
conversion rounded like MATLAB's uint8 arithmetic. Framework-free on purpose (numpy only).
"""
import math

import numpy as np

# MATLAB's bicubic kernel support is [-2, 2].
_CUBIC_WIDTH = 4.0


# BT.601 matrix and offset used by MATLAB's rgb2ycbcr (RGB in [0, 1] -> YCbCr in [0, 255]).
_YCBCR_MATRIX = np.array([[65.481, 128.553, 24.966],
                          [-37.797, -74.203, 112.0],
                          [112.0, -93.786, -18.214]])


_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


def _cubic(x):
    """Keys' cubic convolution kernel with a = -0.5, as MATLAB's ``cubic``."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    return ((1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
            + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2)))


def _contributions(in_length, out_length, scale):
    """MATLAB's ``contributions()``: per output sample, the input indices (0-based) and their weights.

    Returns ``(weights, indices)``, both (out_length, taps). Out-of-range taps read the mirrored image
    ('symmetric' padding); tap columns whose weights are all zero are dropped, as MATLAB does.
    """
    if scale < 1:
        # Antialiasing: stretch the kernel by 1/scale (and lower it by scale) so it low-pass filters.
        def kernel(x):
            return scale * _cubic(scale * x)
        kernel_width = _CUBIC_WIDTH / scale
    else:
        kernel = _cubic
        kernel_width = _CUBIC_WIDTH

    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based, as in MATLAB
    u = x / scale + 0.5 * (1 - 1 / scale)  # input coordinate the output sample centre maps to
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # 'symmetric' padding: index i outside 1..n is read from [1..n, n..1] repeated.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, mirror.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_along(img, axis, weights, indices):
    """Weighted sum of gathered input lines along ``axis``, one tap at a time as MATLAB's imresizemex.

    Gathering per tap costs O(output x taps), unlike a dense (out x in) matrix product, and keeps
    MATLAB's summation order.
    """
    shape = [1] * img.ndim
    shape[axis] = weights.shape[0]
    out = None
    for tap in range(weights.shape[1]):
        term = np.take(img, indices[:, tap], axis=axis) * weights[:, tap].reshape(shape)
        out = term if out is None else out + term
    return out


def _output_shape(in_shape, scale, output_shape):
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of scale or output_shape")
    if output_shape is not None:
        out_h, out_w = (int(v) for v in output_shape[:2])
        if out_h < 1 or out_w < 1:
            raise ValueError(f"imresize: output_shape must be positive, got {tuple(output_shape)}")
        return (out_h, out_w), (out_h / in_shape[0], out_w / in_shape[1])
    if np.ndim(scale) == 0:
        scale = (float(scale), float(scale))
    scale_h, scale_w = (float(s) for s in scale)
    if scale_h <= 0 or scale_w <= 0:
        raise ValueError(f"imresize: scale must be positive, got {scale}")
    # MATLAB: output size = ceil(scale * input size); the given scale (not out/in) drives the kernel.
    return (math.ceil(scale_h * in_shape[0]), math.ceil(scale_w * in_shape[1])), (scale_h, scale_w)


def imresize(img, scale=None, output_shape=None):
    """Bicubic resize exactly as MATLAB's ``imresize(img, scale)`` / ``imresize(img, [h w])``.

    ``img`` is HxW or HxWxC. ``scale`` is a number or an (h, w) pair; ``output_shape`` is (h, w, ...)
    (only the first two entries are used). Float input gives float64 output with no rounding or clipping;
    uint8 input is computed in double and rounded and saturated back to uint8, as MATLAB does.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize: expected an HxW or HxWxC array, got shape {img.shape}")
    if min(img.shape[:2]) < 1:
        raise ValueError(f"imresize: empty image of shape {img.shape}")
    is_uint8 = img.dtype == np.uint8
    out = img.astype(np.float64)

    out_hw, scales = _output_shape(img.shape, scale, output_shape)
    # MATLAB resizes the axis with the smaller scale first (stable order on ties: rows first).
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        weights, indices = _contributions(out.shape[axis], out_hw[axis], scales[axis])
        out = _resize_along(out, axis, weights, indices)

    if is_uint8:
        # MATLAB's uint8 conversion: round half away from zero, then saturate.
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


def _check_rgb_uint8(img, name):
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name}: expected a uint8 HxWx3 RGB array, got {img.dtype} {img.shape}")
    return img


def _linear_combination(img, rows, offsets):
    """``rows @ pixel + offset`` per pixel, in double, with the sum taken in MATLAB's imlincomb order."""
    channels = [img[..., c].astype(np.float64) for c in range(3)]
    return np.stack([row[0] * channels[0] + row[1] * channels[1] + row[2] * channels[2] + offset
                     for row, offset in zip(rows, offsets)], axis=-1)


def _round_to_uint8(values):
    # imlincomb's uint8 output: round half away from zero (values are >= 0 after the clip), saturate.
    return np.floor(np.clip(values, 0, 255) + 0.5).astype(np.uint8)


def rgb2ycbcr(img):
    """MATLAB ``rgb2ycbcr`` for a uint8 HxWx3 RGB image: uint8 YCbCr (Y in [16, 235], Cb/Cr in [16, 240])."""
    img = _check_rgb_uint8(img, "rgb2ycbcr")
    # MATLAB scales the matrix by 1/255 for uint8 input and keeps the offset in 0..255 units.
    return _round_to_uint8(_linear_combination(img, (1 / 255) * _YCBCR_MATRIX, _YCBCR_OFFSET))


def rgb2y(img):
    """Y channel of MATLAB ``rgb2ycbcr`` for a uint8 HxWx3 RGB image, as uint8 HxW."""
    img = _check_rgb_uint8(img, "rgb2y")
    y = _linear_combination(img, (1 / 255) * _YCBCR_MATRIX[:1], _YCBCR_OFFSET[:1])
    return _round_to_uint8(y[..., 0])


def ycbcr2rgb(img):
    """MATLAB ``ycbcr2rgb``, returned as uint8 RGB (rounded and clipped).

    uint8 input holds YCbCr in 0..255 units. Float input is on MATLAB's double scale, i.e. [0, 1]
    (Y in [16/255, 235/255]) -- the scale of a super-resolved Y in [0, 1] next to Cb/Cr divided by 255.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"ycbcr2rgb: expected an HxWx3 YCbCr array, got shape {img.shape}")
    inverse = np.linalg.inv(_YCBCR_MATRIX)
    if img.dtype == np.uint8:
        # rgb = 255 * T^-1 * (ycbcr - offset), as MATLAB's uint8 branch.
        rgb255 = _linear_combination(img, 255 * inverse, -(255 * inverse) @ _YCBCR_OFFSET)
    elif np.issubdtype(img.dtype, np.floating):
        if np.nanmax(np.abs(img)) > 1.5:
            raise ValueError("ycbcr2rgb: float YCbCr must be on the [0, 1] scale (divide 0..255 values by 255)")
        # MATLAB's double branch gives RGB in [0, 1]; uint8(x * 255) of it is this, rounded below.
        rgb255 = 255 * _linear_combination(img, 255 * inverse, -inverse @ _YCBCR_OFFSET)
    else:
        raise ValueError(f"ycbcr2rgb: expected uint8 or float input, got {img.dtype}")
    return _round_to_uint8(np.nan_to_num(rgb255))
