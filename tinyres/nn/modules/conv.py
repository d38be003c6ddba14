"""``torch.nn.modules.conv``: the convolutions and their base ``_ConvNd``, where ported code
imports them from (``from torch.nn.modules.conv import ...``).  The classes live in
``tinyres.nn``."""
from ..layers import _ConvNd, Conv1d, Conv2d, ConvTranspose2d  # noqa: F401
