"""``python -m docgen``: the same as the ``auto-docs`` command."""

import sys

from docgen.cli import main

sys.exit(main())
