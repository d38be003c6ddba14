"""``torch.nn.modules.linear``: Linear, Bilinear and Identity, where ported code imports them from (``from
torch.nn.modules.linear import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import Bilinear, Identity, Linear  # noqa: F401
