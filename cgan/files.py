"""Write files so that a kill at any moment leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

# mkstemp creates files readable by their owner only; finished files get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None):
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure remove it.

    `suffix` ends the temporary name (default: `path`'s own suffix), for writers
    that pick a format by extension, such as Keras's `.h5` and `.keras`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix or path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> Path:
    """Replace `path` with `text`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
