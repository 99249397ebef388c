"""SRCNN's shapes without MindSpore: the architectures, paddings and border, for the checks that run before a
network is built (a refused input costs no MindSpore start-up)."""

ARCHS = ("9-1-5", "9-3-5", "9-5-5")


PADDINGS = ("replicate", "zeros", "valid")


def parse_arch(arch):
    """'9-5-5' -> (9, 5, 5): the three kernel sizes."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    return tuple(int(k) for k in arch.split("-"))


def border(arch):
    """Pixels lost on each side by a 'valid' forward: (f1 + f2 + f3 - 3) / 2."""
    return (sum(parse_arch(arch)) - 3) // 2


def loss_side(patch_size, arch, padding):
    """Side of the square of each training patch that the loss covers: the whole patch, or with 'valid' the
    centre the smaller output covers."""
    return patch_size - 2 * border(arch) if padding == "valid" else patch_size
