"""``torch.nn.modules.padding``: the padding layers, where ported code imports them from (``from
torch.nn.modules.padding import ...``).  The classes live in ``tinyres.nn``."""
from ..layers import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d,  # noqa: F401
                      ConstantPad3d, ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d,
                      ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d)
