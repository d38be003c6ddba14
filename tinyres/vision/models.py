"""``torchvision.models``' ResNets, from ``tinyres.models`` (same constructors, arguments and
state_dict keys; ``weights=`` names tinyres's bundled weights, and nothing is downloaded).

The factories here also take torchvision's legacy ``pretrained=`` (before 0.13), with
torchvision's warnings: ``pretrained=False`` is ``weights=None``; ``pretrained=True`` is
``weights="IMAGENET1K_V1"``, which tinyres does not bundle (a ValueError saying how to load a
torchvision ``.pth``).  ``tinyres.models``' own factories take ``weights=`` only.
"""
import functools
import warnings

from .. import models as _models
from ..models import ResNet, get_model, list_models  # noqa: F401

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
           "wide_resnet50_2", "get_model", "list_models"]

# torchvision's name of each factory's weights enum (in its warning); pretrained=True meant IMAGENET1K_V1
_WEIGHTS_ENUM = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights",
                 "resnet101": "ResNet101_Weights", "resnet152": "ResNet152_Weights",
                 "resnext50_32x4d": "ResNeXt50_32X4D_Weights", "wide_resnet50_2": "Wide_ResNet50_2_Weights"}


def _legacy_interface(factory):
    """``factory`` taking torchvision's ``pretrained=`` too (and, as torchvision, ``weights`` and
    ``progress`` positionally, with its warning), warning as torchvision's
    ``handle_legacy_interface`` does."""
    enum = _WEIGHTS_ENUM[factory.__name__]

    @functools.wraps(factory)
    def wrapper(*args, **kwargs):
        if args:
            if len(args) > 2:
                raise TypeError(f"{factory.__name__}() takes from 0 to 2 positional arguments but {len(args)} "
                                "were given")
            names = ("weights", "progress")[:len(args)]
            warnings.warn(f"Using {' and '.join(repr(n) for n in names)} as positional parameter(s) is deprecated "
                          "since 0.13 and may be removed in the future. Please use keyword parameter(s) instead.",
                          stacklevel=2)
            kwargs.update(zip(names, args))
        weights = kwargs.get("weights")
        positional = "weights" in kwargs and isinstance(weights, bool)     # resnet18(True): the old pretrained
        if positional or "pretrained" in kwargs and "weights" not in kwargs:
            pretrained = kwargs.pop("weights" if positional else "pretrained")
            meant = f"{enum}.IMAGENET1K_V1" if pretrained else None
            if not positional:
                warnings.warn("The parameter 'pretrained' is deprecated since 0.13 and may be removed in the future, "
                              "please use 'weights' instead.", stacklevel=2)
            message = ("Arguments other than a weight enum or `None` for 'weights' are deprecated since 0.13 and may "
                       f"be removed in the future. The current behavior is equivalent to passing `weights={meant}`.")
            if pretrained:
                message += f" You can also use `weights={enum}.DEFAULT` to get the most up-to-date weights."
            warnings.warn(message, stacklevel=2)
            kwargs["weights"] = "IMAGENET1K_V1" if pretrained else None
        return factory(**kwargs)
    return wrapper


resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, wide_resnet50_2 = (
    _legacy_interface(getattr(_models, name)) for name in _WEIGHTS_ENUM)
