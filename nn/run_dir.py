"""The folder `chainrule train --out DIR` writes: one run's files, committed all or nothing.

A run never writes into DIR. It writes every file into a fresh folder beside it (a
*staging* folder, `.DIR.staging-XXXXXXXX` in DIR's parent), and when all of them are
complete it swaps that folder in with one rename:

- DIR missing: `rename(staging, DIR)`;
- DIR holding an earlier run: an atomic exchange of the two folders (Linux's
  `renameat2(RENAME_EXCHANGE)`), after which the staging name holds the earlier run, which is
  then removed. Where the exchange is not available, DIR is first renamed aside to
  `.DIR.old-XXXXXXXX` and the staging folder renamed to DIR; a run killed between those two
  renames leaves no DIR, and the next run puts the old one back.

So a reader of DIR sees the earlier run or the new one, complete, never a mix; a run that
fails or is killed leaves DIR as it was. What a killed run leaves beside DIR (a staging or an
old folder) is removed by the next run to the same DIR, unless another run is using it (each
run holds an exclusive `flock` on its staging folder).

DIR holds one run and nothing else: a DIR with other entries (a file of yours, a folder) is
refused before training, so a run never replaces anything it did not write. Clean-up only ever
deletes the names in `OUTPUT_NAMES` (and the temporary files `autograd.files.atomic_write`
makes for them), then removes the folder if it is empty.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

from autograd.files import fsync_directory, new_directory_mode

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; staging folders go unlocked
    fcntl = None  # type: ignore[assignment]

#: Every file a run may write. A run's folder holds these and nothing else.
OUTPUT_NAMES = ("model.json", "metrics.json", "loss.png", "decision_boundary.png")

# A temporary file of `atomic_write` for one of OUTPUT_NAMES: ".model.json.k3j2l1.tmp".
_TEMPORARY = re.compile(r"^\.(" + "|".join(re.escape(n) for n in OUTPUT_NAMES) + r")\..*\.tmp$")


class RunDirError(ValueError):
    """--out cannot hold a run: the message says why, naming the path."""


def _ours(name: str) -> bool:
    return name in OUTPUT_NAMES or bool(_TEMPORARY.match(name))


def _foreign(folder: Path) -> list[str]:
    """The entries of `folder` that no run wrote (sorted)."""
    return sorted(e.name for e in os.scandir(folder) if not (_ours(e.name) and e.is_file()))


def _remove_run_folder(folder: Path) -> bool:
    """Delete a run's files in `folder`, then the folder if that left it empty.

    Returns whether the folder is gone. Never deletes a name outside `OUTPUT_NAMES` and
    their temporary files.
    """
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return True
    for entry in entries:
        if _ours(entry.name) and not entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def exchange(a: Path, b: Path) -> bool:
    """Swap the folders `a` and `b` atomically (Linux `renameat2(RENAME_EXCHANGE)`).

    Returns False where the system or the file system cannot (the caller then falls back
    to two renames); raises OSError for any other failure, with nothing swapped.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)  # glibc >= 2.28
    if renameat2 is None:
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2  # <fcntl.h>, <linux/fs.h>
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


class RunDirectory:
    """The --out folder of one `chainrule train` run.

    Made before training (so a bad --out fails first): checks DIR, creates its missing
    parent folders, removes what killed runs left, and makes the staging folder (which
    proves the parent writable). `path(name)` is where a file of the run is written;
    `commit()` swaps the complete run in; `close()` removes whatever is left of a run that
    did not commit, and the parent folders it created.

    Raises:
        RunDirError: DIR is a file, is the current folder (or holds it), holds entries no
            run wrote, or its parent cannot be made or written.
    """

    def __init__(self, out: Path) -> None:
        self.given = out
        # The real folder: a run replaces the folder a symlink points to, not the link.
        self.dir = Path(os.path.realpath(out))
        if self.dir.exists() and not self.dir.is_dir():
            raise RunDirError(f"{out} exists and is not a directory")
        cwd = Path.cwd().resolve()
        if self.dir == cwd or self.dir in cwd.parents:
            raise RunDirError(
                f"{out} is the current directory or holds it; give the run a folder of its own"
            )
        self.parent = self.dir.parent
        self.created = [p for p in reversed([self.parent, *self.parent.parents]) if not p.exists()]
        self.committed = False
        self.staging: Path | None = None
        self._lock: int | None = None
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._remove_created()  # mkdir may have made some parents before failing
            raise RunDirError(f"cannot create {self.parent} ({e.strerror})") from None
        self.clean_leftovers()
        self._check_contents()
        try:
            self.staging = Path(
                tempfile.mkdtemp(dir=self.parent, prefix=f".{self.dir.name}.staging-")
            )
        except OSError as e:
            self._remove_created()
            raise RunDirError(
                f"cannot write into {self.parent} ({e.strerror}); a run is written beside "
                f"{out} and then renamed to it"
            ) from None
        self._lock = os.open(self.staging, os.O_RDONLY)
        _try_lock(self._lock)
        try:
            mode = stat.S_IMODE(self.dir.stat().st_mode)
        except OSError:
            mode = new_directory_mode()  # as mkdir would make it (mkdtemp makes 0o700)
        os.chmod(self.staging, mode)

    # -- before training ---------------------------------------------------------------------

    def _check_contents(self) -> None:
        if not self.dir.is_dir():
            return
        foreign = _foreign(self.dir)
        if foreign:
            shown = ", ".join(foreign[:3]) + (
                f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            )
            raise RunDirError(
                f"{self.given} holds entries no run wrote ({shown}); a run replaces the whole "
                "folder, so give a new or empty folder, or one an earlier run wrote"
            )

    def clean_leftovers(self) -> list[Path]:
        """Remove what killed runs to this DIR left beside it; returns what was removed.

        A staging folder still locked by a running run is left alone. An old folder put
        aside by a fallback commit that was killed before DIR was renamed back is put
        back as DIR.
        """
        removed = []
        prefix = f".{self.dir.name}."
        for entry in sorted(os.scandir(self.parent), key=lambda e: e.name):
            rest = entry.name[len(prefix) :] if entry.name.startswith(prefix) else ""
            if not entry.is_dir(follow_symlinks=False):
                continue
            if rest.startswith("old-") and not self.dir.exists():
                os.rename(entry.path, self.dir)  # the earlier run, back where it was
                continue
            if not (rest.startswith("staging-") or rest.startswith("old-")):
                continue
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                if not _try_lock(fd):
                    continue  # another run is writing it
                if _remove_run_folder(Path(entry.path)):
                    removed.append(Path(entry.path))
            finally:
                os.close(fd)
        # Earlier versions staged inside DIR itself: ".staging-XXXXXXXX".
        if self.dir.is_dir():
            for entry in os.scandir(self.dir):
                old_layout = entry.name.startswith(".staging-") and entry.is_dir(
                    follow_symlinks=False
                )
                if old_layout and _remove_run_folder(Path(entry.path)):
                    removed.append(Path(entry.path))
        if removed:
            fsync_directory(self.parent)
        return removed

    # -- after training ----------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """Where the run's file `name` (one of OUTPUT_NAMES) is written before the commit."""
        assert self.staging is not None and name in OUTPUT_NAMES, name
        return self.staging / name

    def commit(self) -> list[Path]:
        """Swap the complete staging folder in as DIR; returns the run's files in DIR.

        Raises:
            RunDirError: entries no run wrote appeared in DIR during training.
            OSError: a rename failed; DIR is then as it was.
        """
        assert self.staging is not None
        names = sorted(os.listdir(self.staging), key=OUTPUT_NAMES.index)
        for name in names:
            old = self.dir / name
            if old.is_file():
                # Keep the mode of the file replaced, as writing over it with open() would.
                os.chmod(self.staging / name, stat.S_IMODE(old.stat().st_mode))
        fsync_directory(self.staging)
        self._check_contents()
        if not self.dir.exists():
            os.rename(self.staging, self.dir)
        elif not exchange(self.staging, self.dir):
            aside = self.staging.with_name(self.staging.name.replace(".staging-", ".old-", 1))
            os.rename(self.dir, aside)
            try:
                os.rename(self.staging, self.dir)
            except BaseException:
                os.rename(aside, self.dir)
                raise
            os.rename(aside, self.staging)  # the earlier run, removed below
        self.committed = True
        fsync_directory(self.parent)
        if self.staging.exists():
            _remove_run_folder(self.staging)  # the earlier run; a kill here leaves it for the next
        return [self.dir / name for name in names]

    def close(self) -> None:
        """Remove the staging folder of a run that did not commit, and the parents made."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self.staging is not None and not self.committed:
            _remove_run_folder(self.staging)
            self._remove_created()

    def _remove_created(self) -> None:
        for p in reversed(self.created):
            try:
                p.rmdir()  # only if empty: never removes anything else
            except OSError:
                break  # not empty, or never made: its parents are not ours to remove
