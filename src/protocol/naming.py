"""How images and datasets are named in results, saved files and offline inputs: one place for every entry point.

An image is named by its path relative to the data folder, without extension (``sub/a.b.png`` -> ``sub/a.b``;
a single image file given as the data path is named by its stem). A dataset is named by its folder. The
Ascend 310 ``.bin`` files flatten nested names with ``__``. Framework-free (no MindSpore).
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
    """{image_name: path} for the images of ``data_path``; UserError if two files share a name (e.g. a.png
    and a.jpg), since their results could not be told apart."""
    names = {}
    for path in list_images(data_path, key="data_path"):
        name = image_name(path, data_path)
        if name in names:
            raise UserError(f"{names[name]} and {path} have the same name {name!r}: rename one of them")
        names[name] = path
    return names


def output_names(paths, input_path, scale):
    """{input path: image_name} for test.py's outputs (``<name>_srcnn_x<scale>.png``); UserError if two inputs
    would write the same file (e.g. a.png and a.jpg)."""
    names, seen = {}, {}
    for path in paths:
        name = image_name(path, input_path)
        if name in seen:
            raise UserError(f"{seen[name]} and {path} would both be saved as {name}_srcnn_x{scale}.png: "
                            "rename one of them")
        seen[name] = path
        names[path] = name
    return names


def saved_image_name(name, kind, scale):
    """The file an image's result is saved as: ``<name>_<kind>_x<scale>.png`` (kind: srcnn or compare)."""
    return f"{name}_{kind}_x{scale}.png"


def bin_name(name):
    """The .bin file of an image name: nested folders flattened with '__' (``sub/a.b`` -> ``sub__a.b.bin``)."""
    return name.replace("/", "__") + ".bin"


def bin_output_name(bin_file):
    """The harness's output 0 for the input ``bin_file`` (``X.bin`` -> ``X_0.bin``)."""
    return f"{Path(bin_file).stem}_0.bin"
