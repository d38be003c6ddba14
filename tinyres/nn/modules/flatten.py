"""``torch.nn.modules.flatten``: Flatten and Unflatten, where ported code imports them from (``from
torch.nn.modules.flatten import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import Flatten, Unflatten  # noqa: F401
