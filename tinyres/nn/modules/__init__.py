"""``torch.nn.modules``: where torch defines its layers, one module per kind, and where ported
code imports the bases from -- ``from torch.nn.modules.batchnorm import _BatchNorm``, ``from
torch.nn.modules.conv import _ConvNd``, ``from torch.nn.modules.utils import _pair``.  Each module
here names what tinyres has of torch's; the classes themselves are ``tinyres.nn``'s (layers.py,
containers.py, loss.py, ...), so ``nn.modules.conv.Conv2d is nn.Conv2d``."""
from . import (activation, batchnorm, channelshuffle, container, conv, distance, dropout, flatten, fold,  # noqa: F401
               instancenorm, linear, loss, module, normalization, padding, pixelshuffle, pooling, sparse, upsampling,
               utils)
from .module import Module  # noqa: F401
from .activation import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .channelshuffle import *  # noqa: F401,F403
from .container import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .flatten import *  # noqa: F401,F403
from .fold import *  # noqa: F401,F403
from .instancenorm import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .pixelshuffle import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403
