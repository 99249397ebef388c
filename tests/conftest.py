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
