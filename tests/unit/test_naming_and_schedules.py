"""Image and dataset names in the reports (src/protocol/naming.py) and the learning-rate schedules
(src/train/schedules.py), against values written out by hand."""
import math

import pytest

from src.protocol.naming import dataset_name, image_name, image_names
from src.train.schedules import learning_rates
from src.utils.errors import UserError


def _touch(folder, *names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # names only: nothing here reads the pixels


def test_image_names_are_relative_paths_without_extension(tmp_path):
    data = tmp_path / "Set14"
    _touch(data, "baboon.png", "sub/zebra.BMP", "sub/deeper/ppt3.jpg", ".hidden.png", "notes.txt")
    assert image_name(data / "sub" / "zebra.BMP", data) == "sub/zebra"
    assert image_name(data / "baboon.png", data / "baboon.png") == "baboon"  # data_path is the file itself
    assert image_names(data) == {"baboon": data / "baboon.png", "sub/deeper/ppt3": data / "sub/deeper/ppt3.jpg",
                                 "sub/zebra": data / "sub/zebra.BMP"}


def test_two_files_with_one_name_are_refused(tmp_path):
    _touch(tmp_path, "a.png", "a.jpg")
    with pytest.raises(UserError, match="have the same name 'a': rename one of them"):
        image_names(tmp_path)


def test_dataset_name_is_the_folder(tmp_path):
    _touch(tmp_path / "BSD100", "3096.png")
    assert dataset_name(tmp_path / "BSD100") == "BSD100"
    assert dataset_name(tmp_path / "BSD100" / "3096.png") == "BSD100"  # a single image: its folder
    assert dataset_name(str(tmp_path / "BSD100") + "/") == "BSD100"


def test_constant_schedule():
    assert learning_rates("constant", 1e-4, 3) == [1e-4, 1e-4, 1e-4]
    assert learning_rates("constant", 1e-4, 0) == []


def test_cosine_schedule_by_hand():
    # min + (base - min) (1 + cos(pi t / T)) / 2 for T = 4: t = 0..3 -> cos = 1, 1/sqrt2, 0, -1/sqrt2
    rates = learning_rates("cosine", 1.0, 4, min_lr=0.2)
    half = 1 / math.sqrt(2)
    expected = [1.0, 0.2 + 0.4 * (1 + half), 0.6, 0.2 + 0.4 * (1 - half)]
    assert rates == pytest.approx(expected, abs=1e-15)
    assert all(a > b for a, b in zip(rates, rates[1:]))  # decays, never reaching min_lr within the run
    assert learning_rates("cosine", 0.5, 1) == [0.5]


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        learning_rates("step", 1.0, 10)
