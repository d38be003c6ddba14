"""``torch.nn.modules.fold``: Fold and Unfold, where ported code imports them from.  The classes
live in ``tinyres.nn``."""
from ..layers import Fold, Unfold  # noqa: F401
