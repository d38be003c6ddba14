"""``tinyres.backends``, as ``torch.backends``: the flags PyTorch scripts set (``cudnn``)."""
from . import cudnn  # noqa: F401
