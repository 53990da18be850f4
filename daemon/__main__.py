"""`python -m daemon` is `spocd`."""

import sys

from daemon.cli import main

sys.exit(main())
