"""The daemon's helper processes: how each is started, how it learns that
the daemon is gone, and how it is stopped even when it hangs.

Helpers are spawned, not forked: the daemon has threads, and a fork copies
whatever lock one of them held at that moment.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import threading
import time


def spawn_pool() -> concurrent.futures.ProcessPoolExecutor:
    """One spawned helper process, started on its first task."""
    return concurrent.futures.ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_child,
        initargs=(os.getpid(),),
    )


def stop_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Shut the pool down without waiting, and kill a helper that hangs: a
    pool waits for its running task, and a hung task never ends."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.kill()


def init_child(daemon: int) -> None:
    """`daemon` is the pid the daemon gave, not this process's parent as read
    here: a daemon killed while the helper was still starting has already
    handed it to init, and a watch on init would never end."""
    # Ctrl-C at a terminal reaches the whole process group; the daemon
    # stops its helpers itself, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_orphan_watch, args=(daemon,), daemon=True).start()


def _orphan_watch(parent: int, every: float = 1.0) -> None:
    """Exit once the daemon is gone (SIGKILL, OOM): the pool's queues stay
    open in the helper itself, so it would never learn of it otherwise."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)
