"""File-system durability for the store: fsync'd writes, atomic replacement, the writer lock.

Every file of the store is written by :func:`write_atomic`: to a temporary
file beside it, then renamed into place, so a killed process or a full disk
(``ENOSPC`` part-way through a file) never leaves a half-written chunk or
``zarr.json`` in place of the previous one. ``DurableLocalStore`` writes zarr's
keys that way and remembers them, so the commit can fsync them (and their
directories) before the commit record is replaced: data first, record last.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from zarr.core.buffer import Buffer
from zarr.storage import LocalStore

from alloop.errors import StoreError
from alloop.io import write_atomic as write_file_atomic

#: suffix of the temporary files zarr and this module write before renaming them into place
PARTIAL_SUFFIX = ".partial"
#: errno values of a full disk (or an exhausted disk quota)
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DurableLocalStore(LocalStore):
    """A zarr ``LocalStore`` that records the keys it writes, for :meth:`sync_written`."""

    def __init__(self, root: Path | str, *, read_only: bool = False) -> None:
        super().__init__(root, read_only=read_only)
        self._written: set[str] = set()

    def with_read_only(self, read_only: bool = False) -> DurableLocalStore:
        return type(self)(root=self.root, read_only=read_only)

    async def _set(self, key: str, value: Buffer, exclusive: bool = False) -> None:
        await self._ensure_open()
        self._check_writable()
        await asyncio.to_thread(write_atomic, self.root / key, value.as_buffer_like(), exclusive=exclusive)
        self._written.add(key)

    def set_sync(self, key: str, value: Buffer) -> None:
        self._ensure_open_sync()
        self._check_writable()
        write_atomic(self.root / key, value.as_buffer_like())
        self._written.add(key)

    def sync_written(self) -> int:
        """fsync every file written since the last call, then the directories holding them."""
        keys, self._written = self._written, set()
        root = Path(self.root)
        files = [root / key for key in keys]
        dirs: set[Path] = {root}
        for path in files:
            parent = path.parent
            while parent not in dirs and parent != root:
                dirs.add(parent)
                parent = parent.parent
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(fsync_path, files))
            list(pool.map(fsync_path, sorted(dirs, key=lambda p: -len(p.parts))))
        return len(files)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory; a path deleted meanwhile is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: Any, *, exclusive: bool = False, durable: bool = False) -> None:
    """Write the bytes ``data`` to a temporary ``*.partial`` file beside ``path``, then move it into place
    (:func:`alloop.io.write_atomic`; the folder is fsync'd by the commit, not here).

    ``exclusive``: FileExistsError if ``path`` exists; ``durable``: fsync the file before the move.
    Whatever fails (a full disk, a kill), ``path`` keeps its previous content.
    """
    write_file_atomic(path, lambda fh: write_bytes(fh, data), fsync_file=durable, fsync_dir=False,
                      exclusive=exclusive, suffix=PARTIAL_SUFFIX, hidden=False)


def write_bytes(fh: BinaryIO, data: Any) -> None:
    """Write all of ``data`` to ``fh``: the one place the store writes file content (where ENOSPC surfaces)."""
    fh.write(data)


def atomic_write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    """Replace ``path`` by ``data`` as JSON: write a temporary file, fsync, rename, fsync the directory."""
    text = json.dumps(data, indent=1, sort_keys=True)
    write_atomic(path, text.encode("utf-8"), durable=durable)
    if durable:
        fsync_path(path.parent)


def disk_full_error(exc: BaseException, store: Path, seq: int) -> StoreError | None:
    """For a write that found the disk full (ENOSPC, EDQUOT): the StoreError saying what survives and what
    to do; None for any other error."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_FULL_ERRNOS:
        return None
    return StoreError(
        f"the disk holding {store} is full ({exc.strerror or exc}): nothing since commit #{seq} was saved,"
        " that commit is intact; free some space, then reopen the store (alloop resume RUN_DIR)"
    )


def remove_partials(root: Path) -> int:
    """Delete temporary files a killed writer left behind (they are never part of the store)."""
    count = 0
    for path in root.rglob(f"*{PARTIAL_SUFFIX}"):
        if path.is_file():
            path.unlink(missing_ok=True)
            count += 1
    return count


class DirectoryLock:
    """An exclusive, non-blocking ``flock`` on the store directory itself (no lock file to leave behind).

    The kernel releases it when the holder exits, however it exits.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StoreError(
                    f"{self.path} is already open for writing by another process (one writer per store);"
                    " open it with mode='r' to read"
                ) from None
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
