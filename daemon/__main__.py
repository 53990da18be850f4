"""`python -m daemon` is `spocd`."""

import sys

from daemon.cli.pipe import main

sys.exit(main())
