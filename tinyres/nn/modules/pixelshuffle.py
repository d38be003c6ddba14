"""``torch.nn.modules.pixelshuffle``: PixelShuffle and PixelUnshuffle, where ported code imports them
from.  The classes live in ``tinyres.nn``."""
from ..layers import PixelShuffle, PixelUnshuffle  # noqa: F401
