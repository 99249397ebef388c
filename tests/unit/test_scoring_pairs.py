"""evaluate(..., pairs=cache): the degraded pairs are computed once per image and reused (training validation
scores the same images every val_interval steps), with the same scores as without the cache."""
import numpy as np

from src.protocol.degradation import prepare_pair
from src.protocol.scoring import evaluate


def images():
    rng = np.random.default_rng(0)
    return [(f"img{i}", rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)) for i in range(3)]


def sharpen(lr_up, name):
    return np.clip(lr_up * 1.05 - 0.02, 0, 1)


def test_cache_gives_the_same_scores_and_is_filled():
    plain = evaluate(sharpen, images(), 2, source="mem")
    pairs = {}
    first = evaluate(sharpen, images(), 2, source="mem", pairs=pairs)
    second = evaluate(sharpen, images(), 2, source="mem", pairs=pairs)
    assert plain["images"] == first["images"] == second["images"]
    assert sorted(pairs) == ["img0", "img1", "img2"]
    hr_y, lr_up = prepare_pair(images()[1][1], 2)
    assert np.array_equal(pairs["img1"][0], hr_y) and np.array_equal(pairs["img1"][1], lr_up)


def test_cached_pair_is_what_the_model_gets():
    seen = {}
    pairs = {name: prepare_pair(img, 2) for name, img in images()}
    pairs["img0"] = (pairs["img0"][0], np.full_like(pairs["img0"][1], 0.5))

    def record(lr_up, name):
        seen[name] = lr_up
        return lr_up

    evaluate(record, images(), 2, source="mem", pairs=pairs)
    assert np.all(seen["img0"] == 0.5)  # taken from the cache, not recomputed
    assert np.array_equal(seen["img2"], prepare_pair(images()[2][1], 2)[1])
