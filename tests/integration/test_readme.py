"""README.md and README_CN.md stay in step (same commands, same tables), and every figure of their results
tables is recomputed here from results/*.json and pretrained/*.json (never typed by hand, never stale)."""
import json
import re

import pytest

from src.release.results import BEGIN, END
from tests.conftest import REPO_ROOT

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def read(name):
    return (REPO_ROOT / name).read_text(encoding="utf-8")


def code_blocks(text):
    """The command blocks (the ```text tree of "Script and sample code" is prose, translated)."""
    return [block for block in re.findall(r"^```[^\n]*\n.*?^```", text, flags=re.S | re.M)
            if not block.startswith("```text")]


def tables(text):
    """Per markdown table (outside code blocks), the sequence of numbers in its cells."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    found, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                found.append(current)
            current.extend(NUMBER.findall(line))
        else:
            current = None
    return found


def between_markers(text):
    return text.split(BEGIN)[1].split(END)[0].strip()


def test_chinese_readme_has_the_same_commands_and_tables():
    english, chinese = read("README.md"), read("README_CN.md")
    assert code_blocks(chinese) == code_blocks(english)
    assert tables(chinese) == tables(english)
    assert "README_CN.md" in english and "README.md" in chinese


# The results table's rows, written out here rather than taken from src/release/results.py (the code that
# writes the table): method label in each README -> results/<prefix>_x<scale>_<dataset>.json.
MODEL_ROWS = {
    "README.md": {"bicubic": "bicubic", "this repo, 9-1-5, T91": "srcnn", "this repo, 9-5-5, 291 images": "srcnn_955"},
    "README_CN.md": {"双三次插值": "bicubic", "本仓库, 9-1-5, T91": "srcnn", "本仓库, 9-5-5, 291 张图像": "srcnn_955"},
}
# Dong et al., TPAMI 2016, Tables (Set5 / Set14 PSNR): the paper's figures, as published
PAPER_ROWS = {
    "README.md": {"paper 9-1-5, 91 images": "915", "paper 9-5-5, ImageNet": "955"},
    "README_CN.md": {"论文 9-1-5, 91 张图像": "915", "论文 9-5-5, ImageNet": "955"},
}
PAPER = {("915", "Set5"): ("36.34", "32.39", "30.09"), ("915", "Set14"): ("32.18", "29.00", "27.20"),
         ("955", "Set5"): ("36.66", "32.75", "30.49"), ("955", "Set14"): ("32.45", "29.30", "27.50")}
NOT_TRAINED = {"README.md": "not trained yet", "README_CN.md": "尚未训练"}
TRAINED_ON = {"README.md": "training data", "README_CN.md": "训练数据"}
SCALES = (2, 3, 4)


def cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def results_tables(name):
    """The two tables between the markers: [(dataset, method, [cell per scale])], [training row cells]."""
    body = between_markers(read(name))
    scores, training = [], []
    for line in body.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        row = cells(line)
        if row[0].startswith("×"):
            training.append(row)
        elif len(row) == 2 + len(SCALES) and not row[2].startswith("×"):
            scores.append((row[0], row[1], row[2:]))
    return scores, training


def printed(result):
    """A result as the table prints it: PSNR to 2 decimals, SSIM to 4, each the mean over the images."""
    images = result["images"]
    psnr = sum(image["psnr"] for image in images) / len(images)
    ssim = sum(image["ssim"] for image in images) / len(images)
    assert abs(psnr - result["psnr"]) < 1e-9 and abs(ssim - result["ssim"]) < 1e-9  # the JSON is self-consistent
    return f"{psnr:.2f} / {ssim:.4f}"


def sha256(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["README.md", "README_CN.md"])
def test_results_table_figures_are_the_results_jsons(name):
    """Every figure of the PSNR / SSIM table recomputed from results/*.json (per-image values averaged and
    rounded as printed); every shipped checkpoint has its rows, made with that very checkpoint."""
    scores, _ = results_tables(name)
    seen = set()
    for dataset, method, row in scores:
        if method in PAPER_ROWS[name]:
            assert tuple(row) == PAPER[(PAPER_ROWS[name][method], dataset)], (dataset, method)
            continue
        prefix = MODEL_ROWS[name][method]
        for scale, cell in zip(SCALES, row):
            path = REPO_ROOT / "results" / f"{prefix}_x{scale}_{dataset}.json"
            if cell == TRAINED_ON[name]:  # a model's own training images are not a test set
                assert prefix != "bicubic" and dataset == "BSDS200", (dataset, method)
                continue
            if cell == NOT_TRAINED[name]:  # a family's scale not shipped yet: no checkpoint, no figure
                assert not (REPO_ROOT / "pretrained" / f"{prefix}_x{scale}.ckpt").exists(), (dataset, method, scale)
                continue
            result = json.loads(path.read_text(encoding="utf-8"))
            assert (result["dataset"], result["scale"]) == (dataset, scale), path
            expected = printed(result)
            assert cell == (expected if prefix == "bicubic" else f"**{expected}**"), (dataset, method, scale)
            if prefix != "bicubic":
                checkpoint = REPO_ROOT / "pretrained" / f"{prefix}_x{scale}.ckpt"
                assert result["checkpoint_sha256"] == sha256(checkpoint), f"{path} is not of {checkpoint}"
            seen.add((prefix, scale, dataset))
    datasets = ("Set5", "Set14", "BSDS200", "BSD100")
    assert {(p, s, d) for p, s, d in seen if p == "bicubic"} == {("bicubic", s, d) for s in SCALES for d in datasets}
    for checkpoint in (REPO_ROOT / "pretrained").glob("*.ckpt"):
        prefix, scale = checkpoint.stem.rsplit("_x", 1)
        rows = {d for p, s, d in seen if (p, s) == (prefix, int(scale))}
        assert rows and rows >= {"Set5", "Set14", "BSD100"}, f"{checkpoint.name} has no rows in {name}"


@pytest.mark.parametrize("name", ["README.md", "README_CN.md"])
def test_training_table_is_the_training_summaries(name):
    """The training table recomputed from pretrained/<model>_x<scale>.json: steps, Gpix, hours, hardware."""
    _, training = results_tables(name)
    rows = {row[1].strip("`"): row for row in training if row[1] != "—"}
    summaries = sorted((REPO_ROOT / "pretrained").glob("*_x[234].json"))
    assert summaries and sorted(rows) == sorted(f"pretrained/{p.stem}.ckpt" for p in summaries)
    for path in summaries:
        info = json.loads(path.read_text(encoding="utf-8"))
        hardware = "; ".join(info["hardware"]) + (f" ({info['note']})" if info.get("note") else "")
        expected = [f"×{info['scale']}", f"`pretrained/{path.stem}.ckpt`", str(info["steps"]),
                    f"{info['train_pixels'] / 1e9:.1f}", f"{info['train_seconds'] / 3600:.2f}", hardware]
        assert rows[f"pretrained/{path.stem}.ckpt"] == expected, path.name
        assert info["sha256"] == sha256(path.with_suffix(".ckpt")), f"{path.name} is not of its checkpoint"
