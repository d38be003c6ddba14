"""``torch.nn.modules.dropout``: Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout and
FeatureAlphaDropout, where ported code imports them from (``from torch.nn.modules.dropout import ...``).
The classes live in ``tinyres.nn``."""
from ..layers import Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout, FeatureAlphaDropout  # noqa: F401
