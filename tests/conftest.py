import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

# Benchmark images live outside the repository; SRCNN_DATASETS overrides where.
DATASETS = Path(os.environ.get("SRCNN_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def datasets_dir():
    if not (DATASETS / "Set5").is_dir():
        pytest.fail(f"benchmark images not found at {DATASETS} (set SRCNN_DATASETS)")
    return DATASETS


def save_set5_crops(datasets_dir, folder, names, box):
    """Crops ``box`` (left, upper, right, lower) of the Set5 images ``names`` as RGB PNGs in ``folder``: the
    small training sets of the tests."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        with Image.open(datasets_dir / "Set5" / f"{name}.png") as image:
            image.convert("RGB").crop(box).save(folder / f"{name}.png")
    return folder
