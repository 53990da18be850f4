"""`python -m daemon` is `spocd`."""

import sys

from daemon.cli.main import main

sys.exit(main())
