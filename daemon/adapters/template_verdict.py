"""What the check of the templates at load depends on, as one key.

Checking every template at load (compiling each file, following each
include) costs a process 30-40 ms, at every start of every command and at
every reload of the daemon. Its verdict depends only on the files of the
language folders, the code that checks and compiles, and the environment's
settings; when none of them changed, a check that passed passes again. The
key here is all of that: every entry of each language folder (hidden ones
and folders too, since an include may name them), each file's bytes, and
the versions. A folder that cannot be read whole (a FIFO, a file too
large, a loop of links, more entries or bytes than any desk's templates)
has no key, and is checked in full, which says what is wrong with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from hashlib import sha256
from pathlib import Path
from typing import Any

import jinja2

from daemon import __version__
from daemon.config.files import read_config_bytes

#: Entries of a language folder past which it is checked in full every time:
#: a desk has a few hundred templates at most.
MAX_ENTRIES = 5000
#: Bytes of a language folder read for its key, past which it is checked in
#: full every time: the shipped templates are 55 KB a language, and a folder
#: kept with large files beside them (logos, archives) must not cost every
#: start more than the check it would save.
MAX_BYTES = 8 * 1024 * 1024
#: Changes whenever what the check finds changes (what it calls a problem,
#: how it walks includes) within one release: an older verdict is then not
#: taken. A new release of spocd or Jinja takes none either.
CHECK_VERSION = "check-1"


def folder_key(root: Path, languages: Iterable[str], settings: Iterable[str]) -> str | None:
    """A digest of everything the check's verdict depends on, or None when
    the folders cannot be read whole (then only a full check may judge)."""
    digest = sha256()
    for part in (CHECK_VERSION, __version__, jinja2.__version__, *settings):
        digest.update(part.encode("utf-8") + b"\0")
    try:
        for language in languages:
            digest.update(f"language\0{language}\0".encode())
            if not _add_folder(digest, root / language):
                return None
    except (OSError, ValueError):  # FileRefused is an OSError
        return None
    return digest.hexdigest()


def _add_folder(digest: Any, folder: Path) -> bool:
    """Every entry under `folder` into `digest`, in a stable order; False
    when the folder is too large to be judged by its key."""
    if not folder.is_dir():
        digest.update(b"absent\0")
        return True
    seen: set[str] = set()
    entries = size = 0
    for top, dirs, files in os.walk(folder, followlinks=True, onerror=_raise):
        real = os.path.realpath(top)
        if real in seen:  # a link back up: the loader would loop too
            return False
        seen.add(real)
        dirs.sort()
        entries += len(dirs) + len(files)
        if entries > MAX_ENTRIES:
            return False
        where = os.path.relpath(top, folder)
        for name in dirs:
            digest.update(f"dir\0{where}/{name}\0".encode("utf-8", "surrogateescape"))
        for name in sorted(files):
            path = os.path.join(top, name)
            size += os.stat(path).st_size
            if size > MAX_BYTES:
                return False
            content = read_config_bytes(path)
            label = f"file\0{where}/{name}\0{len(content)}\0"
            digest.update(label.encode("utf-8", "surrogateescape"))
            digest.update(content)
    return True


def _raise(error: OSError) -> None:
    raise error
