"""Write files so that a kill at any moment leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import signal
import tempfile
from pathlib import Path

from cgan.errors import InputError

# The kill-safety test (tests/test_kills.py) sets CGAN_TEST_KILL_IN=NAME:N to SIGKILL this process in the
# middle of the N-th write of a file whose name matches NAME (a glob); unset, `kill_point` does nothing.
_KILL_IN = os.environ.get("CGAN_TEST_KILL_IN", "")
_writes_seen: dict[str, int] = {}


def kill_point(path) -> None:
    """Where a write is half done: the kill-safety test's SIGKILL lands here when it asks for this file."""
    if not _KILL_IN:
        return
    name, _, count = _KILL_IN.rpartition(":")
    if fnmatch.fnmatch(Path(path).name, name):
        _writes_seen[name] = _writes_seen.get(name, 0) + 1
        if _writes_seen[name] == int(count):
            os.kill(os.getpid(), signal.SIGKILL)


# mkstemp creates files readable by their owner only; finished files get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


def check_folder(folder) -> Path:
    """InputError if `folder`, or the nearest of its parents that exists, is not a folder; creates nothing."""
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(f"{folder}: cannot be a folder: a file of that name (or of a folder above it) is in the way")
    return folder


def check_file(path) -> Path:
    """InputError if `path` cannot become a file: it is a folder, or a file is in the way of its folder."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file name")
    check_folder(path.parent)
    return path


def make_folder(folder) -> Path:
    """Create `folder` (and its parents) if needed; InputError if a file is in the way or it cannot be made."""
    folder = check_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"{folder}: cannot be a folder: a file of that name (or of a folder above it) "
                         "is in the way") from None
    except OSError as exc:
        raise InputError(f"{folder}: cannot create this folder ({exc.strerror})") from None
    return folder


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None):
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure remove it.

    `suffix` ends the temporary name (default: `path`'s own suffix), for writers
    that pick a format by extension, such as Keras's `.h5` and `.keras`.
    """
    path = Path(path)
    check_file(path)
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix or path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        kill_point(path)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_dir() -> Path:
    """Where measurements worth keeping between runs live: `$CGAN_CACHE_DIR`, else ~/.cache/cgan_mnist."""
    return Path(os.environ.get("CGAN_CACHE_DIR") or Path.home() / ".cache" / "cgan_mnist")


def write_text(path, text: str) -> Path:
    """Replace `path` with `text`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def remove_temporaries(folder) -> list[Path]:
    """Delete what interrupted `atomic_path` writes left in `folder` and its sub-folders (.NAME.XXXX.tmpSUFFIX)."""
    removed = []
    for path in Path(folder).rglob(".*.tmp*"):
        if path.is_file() and ".tmp" in path.name:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def folder_lock(folder, *, wait: bool = False):
    """Hold an exclusive lock on `folder` while the block runs; InputError if another process holds it
    (or with `wait`, wait for it).

    The lock is taken on the folder itself (flock on its descriptor), so it leaves no file
    behind, and the system drops it when the process ends, however it ends.
    """
    import fcntl

    folder = make_folder(folder)
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise InputError(f"{folder} is in use by another training process; wait for it to end, or choose another "
                             f"--out-dir") from None
        yield folder
    finally:
        os.close(handle)
