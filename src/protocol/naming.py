"""Benchmark evaluation shared by eval.py, eval_onnx.py, postprocess.py and training validation.

Framework-free: the model enters only as ``predict(lr_up) -> sr`` (float32 HxW in [0, 1] in, same shape
out), or, for offline outputs, through ``iter_pairs`` + ``score_image`` + ``summarize``.
"""
from pathlib import Path

from src.protocol.image_io import list_images
from src.utils.errors import UserError


def image_name(path, data_path):
    """Path relative to the data folder, without extension (the file's stem if data_path is the file)."""
    path, data_path = Path(path), Path(data_path)
    if path == data_path:
        return path.stem
    return path.relative_to(data_path).with_suffix("").as_posix()


def dataset_name(data_path):
    """The dataset's name as evaluation reports it: the folder's name (the parent's for a single file)."""
    data_path = Path(data_path).resolve()
    return data_path.parent.name if data_path.is_file() else data_path.name


def image_names(data_path):
    """{name: path} with iter_pairs' names (path relative to data_path without extension); UserError if two
    files share a name (e.g. a.png and a.jpg), since their results could not be told apart."""
    data_path = Path(data_path)
    names = {}
    for path in list_images(data_path, key="data_path"):
        name = path.stem if path == data_path else path.relative_to(data_path).with_suffix("").as_posix()
        if name in names:
            raise UserError(f"{names[name]} and {path} have the same name {name!r}: rename one of them")
        names[name] = path
    return names
