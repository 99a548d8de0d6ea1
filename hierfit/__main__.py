"""``python -m hierfit`` runs the command line."""

import sys

from hierfit.cli import main

sys.exit(main())
