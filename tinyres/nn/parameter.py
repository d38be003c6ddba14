"""``torch.nn.parameter``: ``Parameter``, where ported code imports it from (``from
torch.nn.parameter import Parameter``).  It lives in ``tinyres.nn.module``."""
from .module import Parameter  # noqa: F401
