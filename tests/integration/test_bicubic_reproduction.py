"""The bicubic baseline through the full evaluation path reproduces the SRCNN papers' bicubic rows.

This pins down every protocol detail at once (Y conversion, modcrop, antialiased MATLAB bicubic in float,
uint8 rounding, shave = scale): a slip in any of them moves these means by more than 0.01 dB.
"""
import os

import numpy as np
import pytest

from src.protocol.degradation import prepare_pair
from src.protocol.image_io import read_image
from src.protocol.scoring import evaluate, iter_images

# Bicubic PSNR (dB) of the SRCNN papers, Y channel, at x2 / x3 / x4.
PAPER_BICUBIC_PSNR = {
    "Set5": {2: 33.66, 3: 30.39, 4: 28.42},
    "Set14": {2: 30.23, 3: 27.54, 4: 26.00},
}
# This repository's BSDS200 folder (BSD300-train, see the datasets' SOURCES.md); not the paper's BSD200.
BSDS200_BICUBIC_PSNR = {2: 30.14, 3: 27.70, 4: 26.41}
TOLERANCE_DB = 0.01


def _bicubic(dataset_dir, scale):
    skipped = []
    return evaluate(lambda lr_up, name: lr_up, iter_images(dataset_dir, scale, skipped, show_progress=False), scale,
                    source=dataset_dir, skipped=skipped)


@pytest.mark.parametrize("dataset", sorted(PAPER_BICUBIC_PSNR))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_paper(datasets_dir, dataset, scale):
    result = _bicubic(datasets_dir / dataset, scale)
    expected = PAPER_BICUBIC_PSNR[dataset][scale]
    print(f"{dataset} x{scale}: bicubic PSNR {result['bicubic_psnr']:.4f} dB (paper {expected:.2f}), "
          f"SSIM {result['bicubic_ssim']:.4f}")
    assert result["skipped"] == []
    assert len(result["images"]) == {"Set5": 5, "Set14": 14}[dataset]
    assert abs(result["bicubic_psnr"] - expected) <= TOLERANCE_DB
    # The identity "model" is the bicubic input itself.
    assert result["psnr"] == result["bicubic_psnr"] and result["ssim"] == result["bicubic_ssim"]


def test_set14_bridge_is_used_as_y_directly(datasets_dir):
    # bridge.png is single-channel: it must be scored as Y, not rejected or converted through RGB.
    img = read_image(datasets_dir / "Set14" / "bridge.png")
    assert img.shape == (512, 512) and img.dtype == np.uint8
    hr_y, lr_up = prepare_pair(img, 3)
    np.testing.assert_array_equal(hr_y, img[:510, :510])
    assert lr_up.shape == hr_y.shape


@pytest.mark.skipif(not os.environ.get("SRCNN_FULL_BENCH"),
                    reason="200 images x 3 scales take ~30 s; set SRCNN_FULL_BENCH=1 to run")
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_bsds200(datasets_dir, scale):
    result = _bicubic(datasets_dir / "BSDS200", scale)
    print(f"BSDS200 x{scale}: bicubic PSNR {result['bicubic_psnr']:.4f} dB, SSIM {result['bicubic_ssim']:.4f}")
    assert len(result["images"]) == 200
    assert abs(result["bicubic_psnr"] - BSDS200_BICUBIC_PSNR[scale]) <= TOLERANCE_DB
