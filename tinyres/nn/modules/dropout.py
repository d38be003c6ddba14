"""``torch.nn.modules.dropout``: Dropout and Dropout2d, where ported code imports them from
(``from torch.nn.modules.dropout import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import Dropout, Dropout2d  # noqa: F401
