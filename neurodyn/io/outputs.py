"""Output files: refuse outputs that would destroy an input, write atomically, map OS errors.

Every file neurodyn writes goes through :func:`check_output` (before any work) and is written
under a temporary name in the same directory, then renamed (:func:`atomic_path`, and
:func:`neurodyn.io.store.atomic_h5` for HDF5). A failed write (disk full, read-only
directory, quota) removes the temporary file and becomes one :class:`InputError` line.

HDF5 files are written through :class:`GuardedFile`: the HDF5 library cannot recover from a
failed ``write()`` (it crashes when the file is flushed or closed afterwards), so the guard
records the first error, swallows the rest, lets HDF5 finish with a consistent state, and the
writer raises the recorded error once the file is closed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from neurodyn.errors import InputError

# OS errors that mean "the user's output location cannot take this file": exit 2, one line
PROBLEMS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.EISDIR: "is a directory",
    errno.EEXIST: "exists and is not a directory",
    errno.ENAMETOOLONG: "file name too long",
    errno.EFBIG: "file too large for this file system",
}


def os_problem(exc: OSError) -> str | None:
    """Plain words for an OS error the user can fix (full disk, permissions...), else None."""
    return PROBLEMS.get(exc.errno) if exc.errno is not None else None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when both paths exist and name one file (any spelling, symlink or hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(
    out: str | os.PathLike,
    inputs: Iterable[str | os.PathLike] = (),
    *,
    option: str = "--out",
    directory: bool = False,
) -> Path:
    """Refuse an output path before any work is done; returns it as a :class:`Path`.

    Refused (with :class:`InputError`, exit 2): an output that is one of ``inputs`` (compared
    by device and inode, so other spellings, symlinks and hard links count), an existing
    directory where a file is expected (or a file where a directory is expected), a parent
    that is a file, and a location that is not writable.

    Parameters
    ----------
    out : path-like
        The output file (or directory when ``directory``).
    inputs : iterable of path-like
        Files the command reads; directories among them are ignored.
    option : str
        The option that names ``out``, quoted in the message.
    directory : bool
        ``out`` is a directory (run directory, figure folder).
    """
    out = Path(out)
    for inp in inputs:
        if not Path(inp).is_dir() and same_file(out, inp):
            raise InputError(out, f"{option} is the input file {inp}; writing it would destroy "
                                  f"the input, choose another {option}")
    if directory:
        if out.exists() and not out.is_dir():
            raise InputError(out, f"{option} names an existing file; it must be a directory")
    elif out.is_dir():
        raise InputError(out, f"{option} names a directory; give a file name")
    base = _nearest_existing(out if directory else out.parent)
    if not base.is_dir():
        raise InputError(out, f"{option}: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        why = "read-only file system" if _read_only(base) else "permission denied"
        raise InputError(out, f"cannot write to {base}: {why}")
    return out


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def temp_name(final: Path) -> Path:
    """The temporary name ``final`` is written under (same directory, so rename is atomic)."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def create(tmp: Path, mode: str = "wb", **kw):  # noqa: ANN201 (a file object)
    """Open a new temporary output file; failing to create it is the user's problem to fix."""
    try:
        return open(tmp, mode, **kw)  # noqa: SIM115 (the caller closes it)
    except OSError as exc:
        final = tmp.with_name(tmp.name[1:].rsplit(".tmp-", 1)[0])
        raise InputError(final, f"cannot create a file here: {os_problem(exc) or exc.strerror}"
                         ) from None


def make_parent(final: Path) -> None:
    """Create the output's directory; an :class:`InputError` when that is impossible."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(final, f"cannot create its directory: {os_problem(exc) or exc}") from None


@contextlib.contextmanager
def atomic_path(
    final: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *, option: str = "--out"
) -> Iterator[Path]:
    """Yield a temporary path to write; renamed to ``final`` when the block succeeds.

    The output is checked first (:func:`check_output`). On any exception the temporary file
    is removed and ``final`` is untouched; an OS error the user can fix (disk full, read-only,
    permissions) becomes an :class:`InputError` naming ``final``.
    """
    final = check_output(final, inputs, option=option)
    make_parent(final)
    tmp = temp_name(final)
    create(tmp).close()
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and os_problem(exc):
            raise InputError(final, os_problem(exc)) from None
        raise


class GuardedFile(io.RawIOBase):
    """A binary file for h5py's ``fileobj`` driver that never lets a failed write reach HDF5.

    The first :class:`OSError` of ``write``/``truncate`` is kept in :attr:`error`; that and
    every later write report success without writing, so HDF5 stays consistent and can be
    closed. The owner checks :attr:`error` after closing the HDF5 file (and may check it
    earlier to stop work: :func:`raise_if_failed`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)
        self._fh = create(self.path, "w+b", buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._fh.seek(pos, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def readinto(self, buf) -> int:  # type: ignore[override]
        return self._fh.readinto(buf) or 0

    def write(self, data) -> int:  # type: ignore[override]
        n = memoryview(data).nbytes
        if self.error is None:
            try:
                view = memoryview(data)
                while view.nbytes:
                    k = self._fh.write(view)
                    view = view[k:]
            except OSError as exc:
                self.error = exc
        return n

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._fh.truncate(size)
            except OSError as exc:
                self.error = exc
        return self._fh.tell() if size is None else size

    def flush(self) -> None:
        pass

    def fsync(self) -> None:
        """Flush the file to disk (records a failure like a failed write)."""
        if self.error is None:
            try:
                os.fsync(self._fh.fileno())
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


_ACTIVE: list[GuardedFile] = []


@contextlib.contextmanager
def guarded(path: str | os.PathLike) -> Iterator[GuardedFile]:
    """A :class:`GuardedFile` registered so :func:`check_writes` can stop work early."""
    g = GuardedFile(path)
    _ACTIVE.append(g)
    try:
        yield g
    finally:
        _ACTIVE.remove(g)
        g.close()


def check_writes() -> None:
    """Raise the first failed write of any HDF5 file being written (called between datasets)."""
    for g in _ACTIVE:
        g.raise_if_failed()
