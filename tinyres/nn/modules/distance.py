"""``torch.nn.modules.distance``: CosineSimilarity and PairwiseDistance, where ported code
imports them from (``from torch.nn.modules.distance import ...``).  The classes live in
``tinyres.nn``."""
from ..layers import CosineSimilarity, PairwiseDistance  # noqa: F401
