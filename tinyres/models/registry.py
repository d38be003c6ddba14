"""The models by name.  A factory registers itself where it is defined::

    @register_model
    def resnet18(**kwargs): ...

and ``get_model("resnet18")``, ``list_models()`` and the ``tinyres`` command find it; no
central list needs to know it.  ``list_models`` keeps the order of registration.
"""
import inspect

from ..errors import UserError

_MODELS = {}


def register_model(factory):
    """Register ``factory`` under its ``__name__`` (usable as a decorator); returns it unchanged."""
    name = factory.__name__
    if name in _MODELS and _MODELS[name] is not factory:
        raise ValueError(f"register_model: a model named {name!r} is already registered")
    _MODELS[name] = factory
    return factory


def list_models():
    """The names ``get_model`` accepts, in the order they were registered."""
    return list(_MODELS)


def get_model(name, **kwargs):
    """Build a model by name, e.g. ``get_model("resnet20", num_classes=10, in_channels=1)``."""
    return _factory(name)(**kwargs)


def _factory(name):
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; valid names: {', '.join(_MODELS)}")
    return _MODELS[name]


def accepts(name, argument):
    """Whether model ``name``'s factory names ``argument`` among its parameters (``**kwargs``
    passed on to a class does not count: the factory does not promise it)."""
    parameter = inspect.signature(_factory(name)).parameters.get(argument)
    return parameter is not None and parameter.kind is not inspect.Parameter.VAR_KEYWORD
