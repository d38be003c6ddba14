"""``torch.nn.modules.loss``: the losses and their bases ``_Loss`` and ``_WeightedLoss``, where
ported code imports them from (``from torch.nn.modules.loss import ...``).  The classes live in
``tinyres.nn``."""
from ..loss import (_Loss, _WeightedLoss, CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss,
                    BCEWithLogitsLoss, KLDivLoss, MarginRankingLoss, HingeEmbeddingLoss, CosineEmbeddingLoss,
                    SoftMarginLoss, MultiLabelSoftMarginLoss, MultiMarginLoss, MultiLabelMarginLoss, TripletMarginLoss,
                    TripletMarginWithDistanceLoss, GaussianNLLLoss, PoissonNLLLoss)  # noqa: F401
