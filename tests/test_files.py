"""cgan/files.py: a failed write leaves the old file whole and no temporary file behind."""

from __future__ import annotations

import os
import threading
import time

import pytest

from cgan.errors import InputError
from cgan.files import atomic_path, folder_lock, write_text


def test_a_write_replaces_the_file_whole_with_the_usual_permissions(tmp_path):
    path = write_text(tmp_path / "sub" / "a.txt", "new\n")
    assert path.read_text() == "new\n"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only 0600


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = write_text(tmp_path / "a.txt", "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the ne")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_the_temporary_name_keeps_the_suffix_writers_choose_a_format_by(tmp_path):
    with atomic_path(tmp_path / "model.h5", suffix=".keras") as tmp:
        assert tmp.name.endswith(".keras") and tmp.name.startswith(".model.h5.")
        tmp.write_bytes(b"x")
    assert (tmp_path / "model.h5").read_bytes() == b"x"


def test_a_folder_lock_refuses_or_with_wait_waits_for_its_holder(tmp_path):
    order = []

    def second_writer():
        with folder_lock(tmp_path, wait=True):
            order.append("second")

    with folder_lock(tmp_path):
        with pytest.raises(InputError, match="in use by another"):
            with folder_lock(tmp_path):  # a second open of the folder: flock refuses it, as it would another process
                pass
        waiter = threading.Thread(target=second_writer)
        waiter.start()
        time.sleep(0.3)
        order.append("first")  # still held: the waiter has not got in
    waiter.join(timeout=10)
    assert order == ["first", "second"]
