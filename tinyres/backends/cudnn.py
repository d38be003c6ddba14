"""``torch.backends.cudnn``'s flags, so that a ported script's ``cudnn.benchmark = True`` runs.

tinyres does not use cuDNN: its GPU convolutions are im2col and one cuBLAS matrix product,
and they are deterministic whatever these say.  Setting them is allowed and changes
nothing; ``is_available()`` is False.
"""
benchmark = False
deterministic = False
enabled = True
allow_tf32 = False


def is_available():
    """False: tinyres's convolutions do not call cuDNN."""
    return False


def version():
    """None: no cuDNN is used."""
    return None
