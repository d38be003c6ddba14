"""``torch.nn.modules.container``: the containers, where ported code imports them from (``from
torch.nn.modules.container import ...``).  The classes live in ``tinyres.nn``."""
from ..containers import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict  # noqa: F401
