"""``tinyres.models``: the ResNet family, by name or by factory."""
from .cifar import (CifarResNet, PlainBlock, ShortcutA, plain20, plain32, plain44, plain56, plain110,  # noqa: F401
                    resnet8, resnet20, resnet32, resnet44, resnet56, resnet110)
from .resnet import (BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet101,  # noqa: F401
                     resnet152, resnext50_32x4d, wide_resnet50_2)
from .preact import (CifarPreActResNet, PreActBlock, PreActBottleneck, PreActResNet,  # noqa: F401
                     preact_resnet18, preact_resnet20, preact_resnet32, preact_resnet34, preact_resnet44,
                     preact_resnet50, preact_resnet56, preact_resnet110, preact_resnet164)
from .summary import ModelSummary, summary  # noqa: F401
from .weights import load_torch_state_dict, save_torch_state_dict, to_torch_state_dict  # noqa: F401

_FACTORIES = {f.__name__: f for f in (resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d,
                                      wide_resnet50_2, resnet8, resnet20, resnet32, resnet44, resnet56, resnet110,
                                      plain20, plain32, plain44, plain56, plain110,
                                      preact_resnet18, preact_resnet34, preact_resnet50, preact_resnet20,
                                      preact_resnet32, preact_resnet44, preact_resnet56, preact_resnet110,
                                      preact_resnet164)}


def list_models():
    """The names ``get_model`` accepts."""
    return list(_FACTORIES)


def get_model(name, **kwargs):
    """Build a model by name, e.g. ``get_model("resnet20", num_classes=10, in_channels=1)``."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(_FACTORIES)}")
    return _FACTORIES[name](**kwargs)
