"""Compiled templates kept between processes: Jinja's bytecode cache, keyed
by what the compiled code depends on rather than by the template's path, and
quiet when the temporary disk fails (the cache is only a saving)."""

from __future__ import annotations

import contextlib
import io
import marshal
import os
import pickle
from functools import lru_cache
from hashlib import sha1
from types import CodeType
from typing import BinaryIO

from jinja2 import BytecodeCache, Environment, FileSystemBytecodeCache
from jinja2.bccache import Bucket, bc_magic

from daemon.adapters.template_bounds import BOUNDED_CODE


class QuietBytecodeCache(FileSystemBytecodeCache):
    """The cache is only a saving: a full or broken temporary disk must not
    stop templates from loading (and with them the daemon), so a cache file
    that cannot be read or written is compiled, not raised."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        """Keyed by what the compiled code depends on (the environment's
        options, the template's name and its source), not by its path as in
        Jinja: a new desk (`spocd init` copies the templates), an upgrade
        installed in a new folder or a second desk on the host loads the
        same templates without compiling them, 0.6 s a first command. Code
        taken from another folder is given this template's path, which
        Jinja reports in a rendering error."""
        checksum = self.get_source_checksum(source)
        key = f"{compiled_as(environment, name)}\0{name}\0{checksum}"
        bucket = _WholeBucket(environment, sha1(key.encode("utf-8")).hexdigest(), checksum)
        self.load_bytecode(bucket)
        if bucket.code is not None and filename and bucket.code.co_filename != filename:
            bucket.code = _filed_as(bucket.code, filename)
        return bucket

    def own_file(self, name: str) -> str:
        """A file of spocd's own in the cache's folder, under Jinja's pattern:
        `clear()` removes it with the compiled code."""
        return os.path.join(self.directory, self.pattern % (name,))


class _WholeBucket(Bucket):
    """A bucket that reads its file whole before unmarshalling the code.
    Jinja's `marshal.load(f)` calls the file object for every object it
    reads (each type byte a method call), three times the cost of
    `marshal.loads` of the bytes. The file is Jinja's own format: its magic,
    the pickled source checksum, then the code; anything else is a miss."""

    def load_bytecode(self, f: BinaryIO) -> None:
        data = io.BytesIO(f.read())
        try:
            fresh = data.read(len(bc_magic)) == bc_magic and pickle.load(data) == self.checksum
            if fresh:
                self.code = marshal.loads(data.getbuffer()[data.tell() :])
                return
        except Exception:  # a damaged file is a miss: the cache is only a saving
            pass
        self.reset()


def compiled_as(env: Environment, name: str) -> str:
    """Every environment setting Jinja's compiler reads: code compiled under
    other settings is never taken."""
    escape = env.autoescape(name) if callable(env.autoescape) else env.autoescape
    return repr(
        (
            type(env).__qualname__,
            env.block_start_string,
            env.block_end_string,
            env.variable_start_string,
            env.variable_end_string,
            env.comment_start_string,
            env.comment_end_string,
            env.line_statement_prefix,
            env.line_comment_prefix,
            env.trim_blocks,
            env.lstrip_blocks,
            env.newline_sequence,
            env.keep_trailing_newline,
            sorted(env.extensions),
            env.optimized,
            env.finalize is not None,
            env.is_async,
            escape,
            BOUNDED_CODE,
        )
    )


def _filed_as(code: CodeType, filename: str) -> CodeType:
    """`code` and the functions within it (blocks, macros) under `filename`."""
    consts = tuple(_filed_as(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


@lru_cache(maxsize=1)
def bytecode_cache() -> BytecodeCache | None:
    """Compiled templates kept between processes.

    Every process that loads the runtime compiles all templates (`check`
    refuses a broken one at load), which cost a CLI command or a batch ingest
    0.3 s; from the cache it is a file read per template. Jinja keys each
    entry by the template's path and the checksum of its source, so an edited
    template compiles afresh. Jinja's own per-user folder (mode 0700, owner
    checked) under the temporary directory; where it cannot be made safe,
    templates compile as before.
    """
    try:
        return QuietBytecodeCache()
    except (OSError, RuntimeError):
        return None
