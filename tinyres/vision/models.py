"""``torchvision.models``' ResNets, from ``tinyres.models`` (same constructors, arguments and
state_dict keys; ``weights=`` names tinyres's bundled weights, and nothing is downloaded)."""
from ..models import (ResNet, resnet18, resnet34, resnet50, resnet101, resnet152,  # noqa: F401
                      resnext50_32x4d, wide_resnet50_2)
from ..models import get_model, list_models  # noqa: F401
