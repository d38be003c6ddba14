"""``torch.nn.modules.module``: Module, where ported code imports them from (``from
torch.nn.modules.module import ...``).  The classes live in ``tinyres.nn``."""
from ..module import Module  # noqa: F401
