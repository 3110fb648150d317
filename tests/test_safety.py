"""`audit.io.safety`: data paths stay in their root, outputs in --out, with the user's umask, one-line errors."""

import errno
import os

import pytest

from audit.errors import DatasetError, OutputError
from audit.io.safety import atomic_write, output_mode, output_path, prepare_out, safe_join


@pytest.mark.parametrize("name", ["../x.png", "a/../../x.png", "/etc/passwd", "\\\\server\\share\\x.png", "C:/x.png",
                                  "a\\..\\..\\x.png", "x\x00.png", "", "   ", None, 7, ["a"]])
def test_safe_join_refuses_names_that_leave_the_root_naming_the_entry(tmp_path, name):
    with pytest.raises(DatasetError) as err:
        safe_join(tmp_path, name, "COCO file_name")
    message = str(err.value)
    assert "\n" not in message and "COCO file_name" in message
    if isinstance(name, str) and name.strip():
        assert repr(name[:120]) in message


def test_safe_join_accepts_nested_names_and_symlinks_that_stay_inside(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(tmp_path / "sub" / "a.png")
    assert safe_join(tmp_path, "sub/a.png", "file_name") == tmp_path / "sub" / "a.png"
    assert safe_join(tmp_path, "link.png", "file_name") == tmp_path / "link.png"
    assert safe_join(tmp_path, "not/yet/there.png", "file_name") == tmp_path / "not/yet/there.png"


def test_safe_join_refuses_symlinks_of_files_and_folders_that_point_out(tmp_path):
    root, outside = tmp_path / "images", tmp_path / "private"
    root.mkdir(), outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    (root / "a.png").symlink_to(outside / "secret.png")
    (root / "dir").symlink_to(outside)
    for name in ("a.png", "dir/secret.png"):
        with pytest.raises(DatasetError, match="leads out of"):
            safe_join(root, name, "file_name")


def test_output_path_stays_under_out_even_through_a_planted_symlink(tmp_path):
    out = tmp_path / "out"
    (out / "fog").mkdir(parents=True)
    (out / "fog" / "3").symlink_to(tmp_path)
    assert output_path(out, "fog", "1", "a.png") == out / "fog" / "1" / "a.png"
    with pytest.raises(OutputError, match="outside the output folder"):
        output_path(out, "fog", "3", "a.png")


def test_prepare_out_refuses_a_file_and_a_file_on_the_path_in_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        prepare_out(f)
    with pytest.raises(OutputError, match="part of the path is a file"):
        prepare_out(f / "sub")
    assert prepare_out(tmp_path / "new" / "deep").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0500")
def test_prepare_out_refuses_an_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="not writable"):
        prepare_out(locked)
    with pytest.raises(OutputError, match="Permission denied"):
        prepare_out(locked / "sub")


def test_prepare_out_refuses_an_unwritable_folder_even_as_root(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match="not writable by you"):
        prepare_out(tmp_path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_the_umask_mode_not_mkstemps_0600(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert output_mode() == mode
        atomic_write(tmp_path / "a.json", lambda fh: fh.write(b"{}"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("code, message", [(errno.ENOSPC, "disk is full"), (errno.EACCES, "cannot write"),
                                           (errno.EROFS, "cannot write"), (errno.EIO, "cannot write")])
def test_a_failed_write_is_one_line_and_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch, code, message):
    target = tmp_path / "cells.csv"
    target.write_text("finished")

    def fail(fh):
        fh.write(b"half")
        raise OSError(code, os.strerror(code))

    with pytest.raises(OutputError, match=message) as err:
        atomic_write(target, fail)
    assert "\n" not in str(err.value)
    assert target.read_text() == "finished" and [p.name for p in tmp_path.iterdir()] == ["cells.csv"]
