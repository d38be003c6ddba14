"""``tinyres.backends``, as ``torch.backends``: the flags PyTorch scripts set (``cudnn``) and
the devices they ask about (``mps``: never available)."""
from . import cudnn, mps  # noqa: F401
