"""``torch.nn.modules.dropout``: Dropout, Dropout1d and Dropout2d, where ported code imports them from
(``from torch.nn.modules.dropout import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import Dropout, Dropout1d, Dropout2d  # noqa: F401
