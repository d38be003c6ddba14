"""``torch.nn.modules.upsampling``: the upsampling layers, where ported code imports them from
(``from torch.nn.modules.upsampling import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import Upsample, UpsamplingNearest2d, UpsamplingBilinear2d  # noqa: F401
