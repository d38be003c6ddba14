"""``RemovableHandle``: what every ``register_*_hook`` returns, as ``torch.utils.hooks``."""
import itertools

_ids = itertools.count()


class RemovableHandle:
    """``handle.remove()`` takes the hook out of the dict it was put in (a second call does
    nothing).  Also a context manager: the hook is removed on leaving the ``with``."""

    def __init__(self, hooks, *extra):
        self.hooks, self.extra = hooks, extra      # extra: dicts of flags keyed by the same id
        self.id = next(_ids)

    def remove(self):
        for table in (self.hooks, *self.extra):
            table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def add_hook(hooks, hook):
    """Put ``hook`` in the dict ``hooks`` (an OrderedDict: hooks run in the order added)."""
    if not callable(hook):
        raise TypeError(f"register_hook: expected a callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle
