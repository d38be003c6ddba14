"""The core: the array backend, ``Tensor``, grad mode, the autograd engine and the tensor ops.

Imports run one way, in this order: ``backend`` < ``grad_mode`` < ``tensor`` < ``engine``
< ``ops``.  ``tensor`` knows only the backend and grad mode; the engine installs
``Tensor.backward`` and the ops install the math methods (``+``, ``sum``, ``reshape`` ...).
"""
