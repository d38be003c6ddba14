"""``torch.nn.modules.flatten``: Flatten, where ported code imports them from (``from
torch.nn.modules.flatten import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import Flatten  # noqa: F401
