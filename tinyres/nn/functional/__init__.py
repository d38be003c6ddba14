"""``tinyres.nn.functional`` (import as ``F``): the layer ops, as in ``torch.nn.functional``.

Each op is one ``Function`` with its forward and hand-written backward side by side, or a
composite of such ops; the modules below group them by kind.
"""
import sys as _sys

from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .fold import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pixelshuffle import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403
from .vision import *  # noqa: F401,F403

# (``linear`` the function hides ``linear`` the module here: read each module's list from sys.modules)
__all__ = [name for m in ("activation", "conv", "distance", "fold", "linear", "loss", "normalization",
                          "pixelshuffle", "pooling", "sparse", "upsampling", "vision")
           for name in _sys.modules[f"{__name__}.{m}"].__all__]
