"""Reading, listing and writing the benchmark's images, the way people actually hand them over.

``read_image`` returns uint8 HxW (gray) or HxWx3 (RGB) for any common file: EXIF orientation applied,
alpha and palettes flattened, 16-bit images reduced to 8 bits; a file that cannot be decoded is an
ImageReadError (which scoring reports as a skipped image). ``list_images`` finds images by extension
(hidden files left out, sorted); ``check_fits_memory`` refuses an image too large to score before any work;
``write_image`` writes atomically. Framework-free (numpy and Pillow; OpenCV only for 16-bit colour files).
"""
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from src.utils.errors import UserError
from src.utils.file_io import write_atomic
from src.utils.progress import warn


def image_inputs(key, folder):
    """[(key, path)] of the images a command reads from ``folder`` (a folder or one image), for
    check_outputs_spare_inputs; [] if it cannot be listed (the command's own check reports that)."""
    if not folder:
        return []
    try:
        return [(key, path) for path in list_images(folder, key=key)]
    except UserError:
        return []


IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


# Pillow modes that hold one channel of 16 bits ('I' is 32-bit: read_image checks its values first).
_HIGH_BIT_GRAY_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N')


_EXIF_ORIENTATION = 0x0112


_COLOUR_MODES_WITH_ALPHA = ('RGBA', 'RGBa', 'RGBX', 'PA')


class ImageReadError(UserError):
    """An image file that cannot be decoded (corrupt, truncated, empty, not an image).

    ``path`` and ``reason`` are kept so callers that skip the file can report it in their own words.
    """

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: not a readable image ({reason})")

    def __reduce__(self):  # keep it picklable (e.g. across worker processes) despite the 2-argument init
        return type(self), (self.path, self.reason)


def _unreadable(path, reason):
    reason = " ".join(str(reason).split()) or "unknown error"  # one line, whatever the decoder said
    if len(reason) > 120:
        reason = reason[:117] + "..."
    return ImageReadError(path, reason)


def _sixteen_to_eight(values):
    # round(v / 257) maps 0..65535 onto 0..255 exactly (65535 = 255 * 257); no value sits on a .5 tie.
    return np.clip(np.floor(values.astype(np.float64) / 257.0 + 0.5), 0, 255).astype(np.uint8)


def _sixteen_bit_colour_rawmode(img):
    """Raw mode (e.g. 'RGB;16B', 'LA;16B') if Pillow would decode 16-bit colour/alpha data, else None.

    Pillow reads such files by dropping the low byte (16-bit gray+alpha even comes back as 'RGBA'),
    so they are spotted from the tiles' raw mode and decoded with OpenCV instead.
    """
    if img.mode not in ('RGB', 'RGBA', 'LA'):
        return None
    for tile in img.tile:
        args = tile.args if hasattr(tile, 'args') else tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ';16' in rawmode:
            return rawmode
    return None


def _read_with_opencv(path, gray):
    """16-bit colour files via OpenCV (imported only here so plain 8-bit reading needs just Pillow)."""
    try:
        import cv2
    except ImportError:
        raise _unreadable(path, "16-bit colour needs opencv-python installed") from None
    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also copes with non-ASCII paths
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise _unreadable(path, "OpenCV could not decode the 16-bit colour data")
    if img.ndim == 3 and (gray or img.shape[2] == 2):
        img = img[..., 0]  # gray (+ alpha), possibly expanded to BGRA by OpenCV
    elif img.ndim == 3:
        img = img[..., 2::-1]  # BGR(A) -> RGB, alpha dropped
    if img.dtype == np.uint16:
        return _sixteen_to_eight(img)
    return np.ascontiguousarray(img.astype(np.uint8))


def _palette_is_gray(img):
    palette = img.getpalette() or []
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))


def _to_array(img):
    """uint8 HxW or HxWx3 from a fully loaded Pillow image."""
    mode = img.mode
    if mode == 'L':
        return np.asarray(img, dtype=np.uint8)
    if mode in _HIGH_BIT_GRAY_MODES:
        return _sixteen_to_eight(np.asarray(img))
    if mode == 'I':  # 32-bit integers: Pillow's container for 16-bit PNGs too; only 0..65535 has a known scale
        values = np.asarray(img)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > 65535:
            raise ValueError(f"32-bit integer pixels from {low} to {high}, beyond 16 bits: no faithful 8-bit "
                             "conversion; convert it to 8 or 16 bits")
        return _sixteen_to_eight(values)
    if mode == 'F':  # 32-bit floats: faithful only as intensities in [0, 1]
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise ValueError(f"32-bit float pixels from {np.nanmin(values):g} to {np.nanmax(values):g}, not in "
                             "[0, 1]: no faithful 8-bit conversion; convert it to 8 or 16 bits")
        return np.floor(values * 255.0 + 0.5).astype(np.uint8)
    if mode in ('1', 'LA', 'La'):
        return np.asarray(img.convert('L'), dtype=np.uint8)
    if mode == 'P':
        if _palette_is_gray(img):
            return np.asarray(img.convert('L'), dtype=np.uint8)
        return np.asarray(img.convert('RGB'), dtype=np.uint8)
    if mode == 'RGB':
        return np.asarray(img, dtype=np.uint8)
    if mode in _COLOUR_MODES_WITH_ALPHA + ('CMYK', 'YCbCr', 'HSV'):
        return np.asarray(img.convert('RGB'), dtype=np.uint8)
    raise ValueError(f"unsupported pixel format {mode}")


def read_image(path):
    """Decode an image file into uint8: HxW for single-channel images, HxWx3 RGB otherwise.

    16-bit files are scaled to 8 bits by round(v / 257), 32-bit integer ones too if their values fit 16 bits,
    32-bit float ones in [0, 1] by round(v * 255) (other 32-bit images are refused, never clipped); the EXIF
    orientation of a photo is applied; alpha is dropped; palette images become RGB
    (or gray if the palette is gray); CMYK becomes RGB. Raises ImageReadError on any decoding failure.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise _unreadable(path, "empty file")
        with Image.open(path) as img:
            rawmode = _sixteen_bit_colour_rawmode(img)
            if rawmode is not None:
                return _read_with_opencv(path, gray=rawmode.startswith('L'))
            img.load()  # decode everything now so truncated data fails here, not later
            if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:  # a phone photo: upscale it as it is displayed
                img = ImageOps.exif_transpose(img)
            return np.ascontiguousarray(_to_array(img))
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise _unreadable(path, "no such file") from None
    except IsADirectoryError:
        raise _unreadable(path, "is a folder") from None
    except PermissionError:
        raise _unreadable(path, "permission denied") from None
    except Image.UnidentifiedImageError:
        raise _unreadable(path, "unrecognised image format") from None
    except Exception as err:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, zlib.error, ...
        raise _unreadable(path, err) from None



def read_or_skip(path, skipped):
    """``read_image(path)``, or None after a ``warning: skipped <path>: not a readable image (...)`` line, with
    ``path`` appended to the list ``skipped``: one unreadable file does not stop a run over a folder."""
    try:
        return read_image(path)
    except ImageReadError as err:
        warn(f"skipped {path}: not a readable image ({err.reason})")
        skipped.append(str(path))
        return None

# Bytes per pixel of a ground truth while it is scored: the protocol's float64 copies (YCbCr, Y, bicubic down
# and up) and the network's float32 activations (64 + 32 channels of the widest shipped 9-x-5 network, whole
# image). An over-estimate on purpose: an image that fails this check would have been killed by the OOM killer.
SCORING_BYTES_PER_PIXEL = 512


def available_memory():
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits_memory(paths, bytes_per_pixel=SCORING_BYTES_PER_PIXEL, key="data_path"):
    """Before any work: UserError naming the first image of ``paths`` whose size (read from its header, nothing
    decoded) needs more memory than is available. Unreadable headers are left to read_image to report."""

    limit = available_memory()
    if limit is None:
        return
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    width, height = img.size
        except Exception:  # noqa: BLE001 - read_image reports unreadable files in its own words
            continue
        needed = width * height * bytes_per_pixel
        if needed > limit:
            raise UserError(f"{key}: image {path} is {width}x{height} ({width * height / 1e6:.0f} Mpixels): scoring "
                            f"it needs about {needed / 2 ** 30:.1f} GiB, more than the {limit / 2 ** 30:.1f} GiB of "
                            "memory available; crop or downscale it first")


def _is_hidden(relative):
    # Skip dot-files and dot-folders (macOS "._x.png" forks, .ipynb_checkpoints, ...).
    return any(part.startswith('.') for part in relative.parts)


def _has_image_extension(path):
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder, recursive=True, key="data folder"):
    """Image files (by extension, case-insensitive) under ``folder``, sorted by relative path.

    A single image file is returned as ``[file]``. Hidden files and folders are skipped. Raises UserError if
    the folder does not exist, is not a folder, or holds no images; the message starts with ``key`` (the
    config key the folder came from, e.g. ``data_path``).
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{key} {folder} does not exist")
    if folder.is_file() and _has_image_extension(folder):
        return [folder]
    if not folder.is_dir():
        raise UserError(f"{key} {folder} is not a folder (or an image file: {', '.join(IMAGE_EXTENSIONS)})")

    found = []
    seen_dirs = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen_dirs:  # a symlink loop; do not walk it again
            dirs[:] = []
            continue
        seen_dirs.add(real)
        for name in files:
            path = Path(root) / name
            if _has_image_extension(path) and not _is_hidden(path.relative_to(folder)):
                found.append(path)
        if not recursive:
            break
        dirs[:] = [d for d in dirs if not d.startswith('.')]
    if not found:
        raise UserError(f"{key} {folder} has no images ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def write_image(path, img):
    """Write a uint8 HxW or HxWx3 image atomically (temporary file in the same folder, then rename).

    The format follows the extension (PNG for ``.png``). Parent folders are created. Raises UserError if
    the folder cannot be written.
    """
    path = Path(path)
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"write_image: expected uint8, got {img.dtype}")
    image_format = Image.registered_extensions().get(path.suffix.lower(), 'PNG')
    write_atomic(path, lambda handle: Image.fromarray(img).save(handle, format=image_format), binary=True,
                 what="image")


def holdout_names(text):
    """The set of image names (file stems) in a comma-separated ``holdout_images`` value."""
    return {name.strip() for name in str(text or "").split(",") if name.strip()}


def split_holdout(paths, names, folder, key="holdout_images"):
    """``(kept, held)``: ``paths`` whose file stem is not / is in ``names``. UserError naming the images of
    ``names`` that match no file under ``folder`` (a typo would silently train on a validation image)."""
    held = [p for p in paths if Path(p).stem in names]
    missing = sorted(names - {Path(p).stem for p in held})
    if missing:
        raise UserError(f"{key}: no image named {', '.join(missing)} under {folder}")
    return [p for p in paths if Path(p).stem not in names], held
