"""``torch.nn.modules.normalization``: GroupNorm, LayerNorm, RMSNorm and LocalResponseNorm, where ported code imports them
from (``from torch.nn.modules.normalization import ...``).  The classes live in
``tinyres.nn``."""
from ..layers import GroupNorm, LayerNorm, LocalResponseNorm, RMSNorm  # noqa: F401
