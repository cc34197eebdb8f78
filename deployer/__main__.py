"""Run ``python -m deployer`` as ``auto-deploy``."""

import sys

from deployer.cli import main

sys.exit(main())
