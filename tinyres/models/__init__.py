"""``tinyres.models``: the ResNet family, by name or by factory.

Each factory registers its name where it is defined (``@register_model``, see registry.py);
``get_model(name)`` and ``list_models()`` ask that registry.
"""
from .registry import accepts, get_model, list_models, register_model  # noqa: F401
from .cifar import CifarResNet, PlainBlock, ShortcutA, plain20, plain32, plain44, plain56, plain110, resnet8, resnet20, resnet32, resnet44, resnet56, resnet110
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, wide_resnet50_2
from .preact import CifarPreActResNet, PreActBlock, PreActBottleneck, PreActResNet, preact_resnet18, preact_resnet20, preact_resnet32, preact_resnet34, preact_resnet44, preact_resnet50, preact_resnet56, preact_resnet110, preact_resnet164
from .summary import ModelSummary, summary  # noqa: F401
from ..torch_weights import load_torch_state_dict, save_torch_state_dict, to_torch_state_dict  # noqa: F401
