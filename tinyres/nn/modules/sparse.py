"""``torch.nn.modules.sparse``: Embedding, where ported code imports them from (``from
torch.nn.modules.sparse import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import Embedding  # noqa: F401
