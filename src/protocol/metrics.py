"""PSNR and SSIM on 8-bit images, as the SRCNN MATLAB code computes them (framework-free, numpy only)."""
import numpy as np

from src.protocol.degradation import shave

# Identical images have infinite PSNR; a finite cap keeps means and JSON usable.
PSNR_IDENTICAL = 100.0


# Side of the Gaussian SSIM window: images must be at least this large after shaving.
SSIM_WINDOW = 11


_SSIM_SIGMA = 1.5


_SSIM_K1, _SSIM_K2, _SSIM_L = 0.01, 0.03, 255.0


def _prepared(img1, img2, shave_border):
    img1 = np.asarray(img1)
    img2 = np.asarray(img2)
    if img1.shape != img2.shape:
        raise ValueError(f"images differ in shape: {img1.shape} vs {img2.shape}")
    img1 = shave(img1, shave_border).astype(np.float64)
    img2 = shave(img2, shave_border).astype(np.float64)
    if img1.size == 0:
        raise ValueError(f"nothing left to compare after shaving {shave_border} pixels")
    return img1, img2


def psnr(img1, img2, shave_border=0):
    """PSNR in dB with peak 255 (``20*log10(255/rmse)`` in float64) after shaving ``shave_border`` pixels.

    Identical images return exactly ``PSNR_IDENTICAL`` (100.0) instead of infinity.
    """
    img1, img2 = _prepared(img1, img2, shave_border)
    rmse = np.sqrt(np.mean((img1 - img2) ** 2))
    if rmse == 0:
        return PSNR_IDENTICAL
    return float(20.0 * np.log10(255.0 / rmse))


def _gaussian_taps():
    # fspecial('gaussian', 11, 1.5) is the outer product of these normalised 1-D taps.
    x = np.arange(SSIM_WINDOW, dtype=np.float64) - (SSIM_WINDOW - 1) / 2
    taps = np.exp(-(x * x) / (2 * _SSIM_SIGMA ** 2))
    return taps / taps.sum()


def _correlate_rows_valid(img, taps):
    """'valid' correlation along axis 0 with a symmetric odd-length kernel, using in-place buffers.

    The kernel is symmetric, so mirrored rows are added before multiplying (half the products); this is
    the hot loop of evaluation, hence the preallocated buffers.
    """
    half = taps.size // 2
    rows = img.shape[0] - 2 * half
    out = img[half:half + rows] * taps[half]
    pair = np.empty_like(out)
    for k in range(half):
        np.add(img[k:k + rows], img[2 * half - k:2 * half - k + rows], out=pair)
        pair *= taps[k]
        out += pair
    return out


def _filter_valid(img, taps):
    """``filter2(window, img, 'valid')`` for the separable Gaussian window, one axis at a time."""
    return _correlate_rows_valid(_correlate_rows_valid(img, taps).T, taps).T


def ssim(img1, img2, shave_border=0):
    """Mean SSIM (Wang et al. 2004, the authors' ``ssim_index.m``) of two 8-bit grayscale images.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, no automatic
    downsampling; computed in float64 after shaving ``shave_border`` pixels. Images must be at least 11x11
    after shaving. Identical images give 1.0.
    """
    img1, img2 = _prepared(img1, img2, shave_border)
    if img1.ndim != 2:
        raise ValueError(f"ssim expects HxW (single channel) images, got shape {img1.shape}")
    if min(img1.shape) < SSIM_WINDOW:
        raise ValueError(f"ssim needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {img1.shape}")
    c1 = (_SSIM_K1 * _SSIM_L) ** 2
    c2 = (_SSIM_K2 * _SSIM_L) ** 2
    taps = _gaussian_taps()

    mu1 = _filter_valid(img1, taps)
    mu2 = _filter_valid(img2, taps)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(img1 * img1, taps) - mu1_sq
    sigma2_sq = _filter_valid(img2 * img2, taps) - mu2_sq
    sigma12 = _filter_valid(img1 * img2, taps) - mu1_mu2

    ssim_map = (((2 * mu1_mu2 + c1) * (2 * sigma12 + c2))
                / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)))
    return float(ssim_map.mean())
