"""``torch.nn.modules.channelshuffle``: ChannelShuffle, where ported code imports it from.  The
class lives in ``tinyres.nn``."""
from ..layers import ChannelShuffle  # noqa: F401
