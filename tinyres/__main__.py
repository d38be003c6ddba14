"""``python -m tinyres``: the same as the ``tinyres`` command."""
import sys

from .app.cli import main

sys.exit(main())
