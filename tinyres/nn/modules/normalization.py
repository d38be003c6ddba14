"""``torch.nn.modules.normalization``: GroupNorm and LayerNorm, where ported code imports them
from (``from torch.nn.modules.normalization import ...``).  The classes live in
``tinyres.nn``."""
from ..layers import GroupNorm, LayerNorm  # noqa: F401
