"""``torch.nn.modules.pooling``: the pooling layers, where ported code imports them from (``from
torch.nn.modules.pooling import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d  # noqa: F401
from ..layers import MaxPool1d, AvgPool1d, AdaptiveAvgPool1d, AdaptiveMaxPool1d  # noqa: F401
from ..layers import MaxUnpool1d, MaxUnpool2d, LPPool1d, LPPool2d  # noqa: F401
