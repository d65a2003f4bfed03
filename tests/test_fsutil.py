"""Atomic writes: an interrupted write leaves the old content or nothing, never a half-written artifact."""

import pytest

from booktune.fsutil import atomic_dir, atomic_write_json, atomic_write_text


def test_text_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "stats.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["stats.json"]


def test_failed_dir_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (target / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_new_dir_appears_only_when_complete(tmp_path):
    target = tmp_path / "dataset"
    with atomic_dir(target) as tmp:
        (tmp / "part").write_text("x")
        assert not target.exists()
    assert (target / "part").read_text() == "x"
