"""src.utils.file_io's one atomic-write helper on a real file system: the old file or the complete new one,
fsync of the data and of its folder, one permissions rule, nothing left behind. No subprocess, no MindSpore."""
import os
import stat
import tempfile

import pytest

from src.utils.errors import IN_FLIGHT, UserError
from src.utils.file_io import OWNER_LOCK, atomic_output, new_file_mode, replace_atomic, write_atomic, write_text_atomic


@pytest.fixture
def umask_027():
    """A umask other than the usual 022, so the rule is seen to follow it."""
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def entries(folder):
    return sorted(p.name for p in folder.iterdir())


def test_new_file_mode_is_what_open_and_mkdir_give(tmp_path, umask_027):
    with open(tmp_path / "plain", "w", encoding="utf-8"):
        pass
    os.mkdir(tmp_path / "dir")
    assert new_file_mode() == mode(tmp_path / "plain") == 0o640
    assert new_file_mode(folder=True) == mode(tmp_path / "dir") == 0o750


def test_a_new_file_and_a_replaced_private_file_get_the_same_rule(tmp_path, umask_027):
    target = tmp_path / "sub" / "a.txt"
    write_text_atomic(target, "one")  # parent folders are created
    assert target.read_text() == "one" and mode(target) == 0o640
    target.chmod(0o600)  # the old file's mode is not kept: the result is a new file
    write_atomic(target, lambda handle: handle.write(b"two"), binary=True)
    assert target.read_bytes() == b"two" and mode(target) == 0o640
    assert entries(target.parent) == ["a.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")

    def fail(handle):
        handle.write("half")
        raise ValueError("the writer broke")

    with pytest.raises(ValueError, match="the writer broke"):
        write_atomic(target, fail)
    assert target.read_text() == "old" and entries(tmp_path) == ["a.json"]
    assert not [p for p in IN_FLIGHT if str(tmp_path) in p]


def test_an_unwritable_target_is_one_user_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=rf"cannot write results file {tmp_path / 'file' / 'r.json'} \("):
        write_text_atomic(tmp_path / "file" / "r.json", "{}", what="results file")


def test_a_private_temporary_gets_the_rule_when_put_in_place(tmp_path, umask_027):
    fd, name = tempfile.mkstemp(dir=tmp_path)  # 0600, as mkstemp and MindSpore's writers make them
    os.write(fd, b"data")
    os.close(fd)
    replace_atomic(name, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == b"data" and mode(tmp_path / "out.bin") == 0o640
    assert entries(tmp_path) == ["out.bin"]


def test_data_and_folder_are_flushed_before_and_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        info = os.fstat(fd)
        synced.append(("folder" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_text_atomic(tmp_path / "a.txt", "x")
    assert ("file", os.stat(tmp_path / "a.txt").st_ino) in synced
    assert synced[-1] == ("folder", os.stat(tmp_path).st_ino)  # the rename itself survives a crash


def test_a_folder_replaces_the_old_one_whole(tmp_path, umask_027):
    target = tmp_path / "00_data"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"old")
    with atomic_output(target, folder=True) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".00_data.") and temporary.is_dir()
        (temporary / "a.bin").write_bytes(b"new")
        (temporary / "nested").mkdir()
        (temporary / "nested" / "b.bin").write_bytes(b"new")
        assert not target.joinpath("a.bin").exists()  # nothing is visible until the end
    assert entries(target) == ["a.bin", "nested"] and (target / "nested" / "b.bin").read_bytes() == b"new"
    assert mode(target) == mode(target / "nested") == 0o750  # not mkdtemp's 0700
    assert mode(target / "a.bin") == mode(target / "nested" / "b.bin") == 0o640
    assert entries(tmp_path) == ["00_data"]  # no lock file, no old folder, no temporary


def test_a_failed_folder_leaves_the_old_one_and_no_temporary(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "kept").write_text("old")
    with pytest.raises(OSError):
        with atomic_output(target, folder=True) as temporary:
            (temporary / "part").write_text("new")
            raise OSError("disk gone")
    assert entries(target) == ["kept"] and entries(tmp_path) == ["out"]


def test_a_killed_runs_leftovers_are_removed_by_the_next_folder_write(tmp_path):
    target = tmp_path / "out"
    dead_temporary = tmp_path / ".out.abc123"  # its run died: its lock file is free
    dead_temporary.mkdir()
    (dead_temporary / OWNER_LOCK).write_text("")
    old_aside = tmp_path / ".out.old.123.ffff"  # killed between the two renames of a folder switch
    old_aside.mkdir()
    unrelated = tmp_path / ".other.abc"
    unrelated.mkdir()
    with atomic_output(target, folder=True) as temporary:
        (temporary / "f").write_text("x")
    assert entries(tmp_path) == [".other.abc", "out"]


def test_a_suffix_for_writers_that_insist_on_an_extension(tmp_path):
    with atomic_output(tmp_path / "m.ckpt", suffix=".ckpt") as temporary:
        assert temporary.name.startswith(".tmp_m.ckpt.") and temporary.suffix == ".ckpt"
        assert str(temporary) in IN_FLIGHT  # an interrupt removes it
        temporary.write_bytes(b"weights")
    assert (tmp_path / "m.ckpt").read_bytes() == b"weights" and entries(tmp_path) == ["m.ckpt"]
