"""``python -m server`` is the same as the ``reatimbre`` command."""

import sys

from server.cli import main

sys.exit(main())
