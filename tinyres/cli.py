"""``tinyres.cli``, the command's module before the package had layers (now ``tinyres/app/cli.py``).

``python -m tinyres.cli`` runs the ``tinyres`` command; imported, this name is
``tinyres.app.cli`` itself (the same module object, so that patching one patches the other).
It is a file, not only a name in ``sys.modules``, because ``python -m`` needs one to run.
"""
import sys

from .app import cli

if __name__ == "__main__":
    sys.exit(cli.main())
sys.modules[__name__] = cli
