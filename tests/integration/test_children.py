"""The daemon's helper processes leave with the daemon, however it goes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.conftest import ROOT
from tests.support.proc import running, wait_until

#: A daemon that starts a helper and is gone before the helper has finished
#: starting (SIGKILL or the OOM killer at that moment look the same to it).
DIES_AS_ITS_HELPER_STARTS = """
import os
from daemon.service.children import spawn_pool

pool = spawn_pool()
pool.submit(os.getpid)
print(*pool._processes, flush=True)
os._exit(0)
"""


def test_a_helper_whose_daemon_died_while_it_started_exits() -> None:
    # Read up to the pid, not to the end: a helper left behind keeps the pipe open.
    with subprocess.Popen(
        [sys.executable, "-c", DIES_AS_ITS_HELPER_STARTS], cwd=ROOT, stdout=subprocess.PIPE
    ) as daemon:
        assert daemon.stdout is not None
        helper = int(daemon.stdout.readline())
        daemon.stdout.close()
        assert daemon.wait(timeout=60) == 0
    try:
        wait_until(lambda: not running(helper), timeout=15)
    finally:
        if running(helper):
            os.kill(helper, signal.SIGKILL)
