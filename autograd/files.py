"""Files written all at once and files read within a limit: the project's only file I/O helpers.

Every file chainrule writes (a saved model, `chainrule train --out`, `predict --out`, `draw -o`,
the stepper's HTML export) goes through `atomic_write`, and every file it reads from a user
(a CSV, a model) through `read_regular`. Nothing here knows about graphs or networks.

`atomic_write(path, write)`: the bytes go to a temporary file in the same folder, which is
flushed and fsynced, renamed over `path` in one step (`os.replace`), and then the folder itself
is fsynced so that the rename survives a power cut (POSIX makes a rename durable only once the
directory is synced; see the fsync(2) manual page). A reader sees the old file or the new one,
never half of one; on any error the old file is untouched and the temporary file removed.

`read_regular(path, limit, what)`: refuses anything that is not a regular file (a FIFO would
block forever, `/dev/zero` never ends) and any file larger than `limit` bytes, before reading it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "FileLimitError",
    "atomic_write",
    "fsync_directory",
    "new_directory_mode",
    "new_file_mode",
    "read_regular",
]


class FileLimitError(ValueError):
    """A file that must not be read: not a regular file, or larger than the limit."""


def _umask() -> int:
    """The process umask: from /proc on Linux, else by setting it and setting it straight
    back (os.umask has no read-only form; the /proc read avoids that brief change, which
    another thread could see)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a plain `open(path, "w")` gives a new file: 0o666 minus the umask."""
    return 0o666 & ~_umask()


def new_directory_mode() -> int:
    """The mode a plain `os.mkdir(path)` gives a new folder: 0o777 minus the umask."""
    return 0o777 & ~_umask()


def fsync_directory(path: str | Path) -> None:
    """fsync the directory `path`, so that renames and new entries in it are on disk.

    Does nothing where directories cannot be opened (Windows).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (PermissionError, IsADirectoryError):
        return  # Windows cannot open a directory; it has no directory fsync either
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems (old network mounts) refuse fsync on a directory: not an error
        # of ours; the rename itself has happened.
        if e.errno not in (22, 95):  # EINVAL, EOPNOTSUPP
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write the file `path` all at once: `write(f)` fills a temporary file in the same
    folder, which is fsynced, renamed over `path`, and the folder fsynced.

    The file ends with the permissions a plain `open(path, "wb")` would give: an existing
    file keeps its mode, a new one gets 0o666 minus the umask (`mkstemp` makes 0o600).

    Args:
        path: the file to write; its folder must exist.
        write: called once with the open binary file.
    Raises:
        OSError: the folder is missing or not writable, or the disk is full; whatever
            `write` raises. In every case `path` is as it was and no temporary file is left.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(folder)


def read_regular(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of `path`, which must be a regular file of at most `limit` bytes.

    The file is opened without blocking (a FIFO with no writer would otherwise wait forever)
    and checked with `fstat` on the open descriptor, so what is checked is what is read;
    at most `limit + 1` bytes are ever read, so a file that grows meanwhile cannot exhaust
    memory either.

    Args:
        path: the file.
        limit: the largest size accepted, in bytes.
        what: how the message names the file's kind ("CSV file", "model file").
    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: a directory.
        FileLimitError (a ValueError): a device, FIFO or socket, or more than `limit` bytes;
            the message names the path and the limit.
        OSError: it cannot be read (permissions, I/O error).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path}: is a directory, not a {what}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(f"{path}: is a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise FileLimitError(
                f"{path}: not a regular file (a device, pipe or socket); give a {what}"
            )
        if info.st_size > limit:
            raise FileLimitError(
                f"{path}: {info.st_size:,} bytes, more than the {limit:,} a {what} may have"
            )
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileLimitError(f"{path}: more than the {limit:,} bytes a {what} may have")
    return data
