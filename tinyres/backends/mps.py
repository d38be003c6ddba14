"""``torch.backends.mps``: Apple's Metal GPUs, which tinyres does not run on (NumPy on the
CPU, CuPy on CUDA GPUs), so a ported ``if torch.backends.mps.is_available():`` picks another device."""


def is_available():
    """False: tinyres has no Metal backend."""
    return False


def is_built():
    """False: tinyres is not built with Metal."""
    return False
