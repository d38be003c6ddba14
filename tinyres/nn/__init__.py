"""``tinyres.nn``: modules (layers and containers), ``init`` and ``functional``, as ``torch.nn``.

Each module below lists its public names in its own ``__all__``; they are re-exported
here, so a layer added to a module (and its ``__all__``) is ``tinyres.nn.<Name>`` with no
second list to update.  A new layer module takes one ``from .<module> import *`` line.
"""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401  (clip_grad_norm_, parameters_to_vector, ...)
from .module import *  # noqa: F401,F403
from .containers import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .sync_batchnorm import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from . import modules, parameter  # noqa: F401  (torch's import paths: nn.modules.batchnorm, nn.parameter)

# The losses composed of tensor ops (nn/loss.py) are also functional names, as torch spells
# them: ``tinyres.nn.functional.l1_loss`` etc.  They are set here, not listed in
# ``nn.functional.__all__`` (that list is the layer ops' Functions, each with a gradcheck row).
from . import loss as _loss  # noqa: E402
for _name in _loss.FUNCTIONS:
    setattr(functional, _name, getattr(_loss, _name))
del _name
