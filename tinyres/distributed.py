"""``tinyres.distributed``: data-parallel training over MPI, as ``torch.distributed``.

Its two halves live in their layers: the collectives (``init``, ``rank``, ``all_reduce`` ...)
in ``tinyres.collectives``, below the layers that use them (``nn.SyncBatchNorm``,
``data.DistributedSampler``); the model wrapper (``DistributedDataParallel``,
``convert_sync_batchnorm``, ``data_parallel``) in ``tinyres.parallel``, above ``nn``.
"""
from .collectives import *  # noqa: F401,F403
from .collectives import _world  # noqa: F401  (tests set the world's size)
from .parallel import *  # noqa: F401,F403
