"""The SRCNN_v1 test protocol: how a ground-truth image becomes the (HR Y, bicubic LR) pair that is scored.

Mirrors the authors' MATLAB demo: Y of ``rgb2ycbcr`` -> modcrop -> ``imresize(1/scale)`` ->
``imresize`` back to the HR size, in float with no rounding in between; outputs become
``uint8(x * 255)`` and ``scale`` pixels are shaved from each border before scoring.
Framework-free (numpy only) so ONNX/offline entry points can share it.
"""
import numpy as np

from src.protocol.matlab_functions import imresize, rgb2y


def modcrop(img, scale):
    """Crop (never resize) height and width down to multiples of ``scale``, keeping the top-left part."""
    scale = int(scale)
    height, width = img.shape[:2]
    return img[:height - height % scale, :width - width % scale]


def image_to_y(img):
    """Y channel (uint8 HxW) of a uint8 image: a 1-channel image already is Y; RGB goes through rgb2ycbcr."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"image_to_y: expected uint8, got {img.dtype}")
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0]
    if img.ndim == 3 and img.shape[2] == 3:
        return rgb2y(img)
    raise ValueError(f"image_to_y: expected HxW or HxWx3, got shape {img.shape}")


def degrade(hr_y, scale):
    """Bicubic LR input of the protocol: down by ``scale`` and back up to the HR size (float32 in ~[0, 1]).

    ``hr_y`` is the modcropped uint8 Y. Both resizes run in float64 without rounding, as the MATLAB demo
    does on floats; only the result is cast to float32 (the network's input type).
    """
    hr = np.asarray(hr_y, dtype=np.float64) / 255.0
    lr = imresize(hr, 1.0 / scale)
    lr_up = imresize(lr, output_shape=hr.shape)
    return lr_up.astype(np.float32)


def prepare_pair(img, scale):
    """(hr_y uint8 HxW, lr_up float32 HxW) for a uint8 ground-truth image: modcrop, Y, degrade."""
    hr_y = image_to_y(modcrop(np.asarray(img), scale))
    if min(hr_y.shape) < scale:
        raise ValueError(f"prepare_pair: image of shape {hr_y.shape} is smaller than the scale {scale}")
    return hr_y, degrade(hr_y, scale)


def to_uint8(img01):
    """MATLAB ``uint8(x * 255)`` for an image in [0, 1]: round half away from zero, saturate, NaN -> 0."""
    scaled = np.clip(np.asarray(img01, dtype=np.float64) * 255.0, 0.0, 255.0)
    # Clipping first makes every value non-negative, where floor(x + 0.5) is round-half-away-from-zero.
    return np.nan_to_num(np.floor(scaled + 0.5), nan=0.0).astype(np.uint8)


def shave(img, border):
    """Drop ``border`` pixels from every side (the protocol scores only the interior)."""
    border = int(border)
    if border <= 0:
        return img
    return img[border:-border, border:-border]
