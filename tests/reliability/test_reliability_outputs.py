"""Output folders: booktune replaces only what it wrote, refuses a folder holding anything else unless told to
write beside it, and recovers from a kill inside a write."""

from __future__ import annotations

import json
import os
import stat

import pytest

from booktune.fsutil import atomic_dir, atomic_write_text, recover_strays, swap_in
from booktune.outputs import MANIFEST, Layout, OutputDir, OutputError

DATA = Layout("data", ("text", "train.jsonl", "stats.json"), "stats.json")


def test_a_new_folder_records_what_booktune_writes(tmp_path):
    out = OutputDir.open(tmp_path / "d", DATA)
    out.write_text("train.jsonl", "{}\n")
    with out.folder("text") as tmp:
        (tmp / "a.txt").write_text("prose")
    manifest = json.loads((tmp_path / "d" / MANIFEST).read_text())
    assert manifest == {"kind": "data", "entries": ["text", "train.jsonl"]}
    again = OutputDir.open(tmp_path / "d", DATA)  # booktune's own folder reopens without --overwrite
    assert again.foreign() == []


def test_a_folder_holding_other_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.md").write_text("mine")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "b.txt").write_text("also mine")
    with pytest.raises(OutputError, match="holds 2 entries booktune did not write .notes.md, text.; pass --overwrite"):
        OutputDir.open(tmp_path, DATA)
    assert not (tmp_path / MANIFEST).exists()
    out = OutputDir.open(tmp_path, DATA, overwrite=True)  # writes beside them
    out.write_text("train.jsonl", "{}\n")
    with pytest.raises(OutputError, match=r"text: in the way, and booktune did not write it"):
        out.write_text("text", "x")
    out.remove("text")  # not booktune's: nothing happens
    assert (tmp_path / "notes.md").read_text() == "mine" and (tmp_path / "text" / "b.txt").read_text() == "also mine"


def test_a_folder_written_before_manifests_is_adopted_by_its_marker(tmp_path):
    (tmp_path / "stats.json").write_text(json.dumps({"version": "0.1.0"}))
    (tmp_path / "train.jsonl").write_text("{}\n")
    (tmp_path / "mine.txt").write_text("kept")
    out = OutputDir.open(tmp_path, DATA, overwrite=True)
    assert out.owned == {"stats.json", "train.jsonl"} and out.foreign() == ["mine.txt"]
    (tmp_path / MANIFEST).unlink()
    (tmp_path / "stats.json").write_text(json.dumps({"something": "else"}))  # not booktune's marker
    with pytest.raises(OutputError, match="did not write"):
        OutputDir.open(tmp_path, DATA)


def test_a_folder_of_another_kind_or_an_unreadable_manifest_is_refused(tmp_path):
    OutputDir.open(tmp_path / "d", DATA)
    with pytest.raises(OutputError, match="a booktune data folder, not a run folder"):
        OutputDir.open(tmp_path / "d", Layout("run", (), ""))
    (tmp_path / "d" / MANIFEST).write_text("{not json")
    with pytest.raises(OutputError, match="unreadable"):
        OutputDir.open(tmp_path / "d", DATA)
    (tmp_path / "f").write_text("a file")
    with pytest.raises(OutputError, match="a file, not a folder"):
        OutputDir.open(tmp_path / "f", DATA)


def test_a_swap_cut_between_its_renames_is_undone_on_the_next_open(tmp_path):
    out = OutputDir.open(tmp_path, DATA)
    out.write_text("train.jsonl", "{}\n")
    with out.folder("text") as tmp:
        (tmp / "a.txt").write_text("old")
    # the state a kill leaves between the two renames of the fallback swap, and a half-written temp file
    os.replace(tmp_path / "text", tmp_path / ".text.old")
    (tmp_path / ".train.jsonl.abcd1234.tmp").write_text("half")
    (tmp_path / ".mine.old").write_text("not booktune's")
    OutputDir.open(tmp_path, DATA)
    assert (tmp_path / "text" / "a.txt").read_text() == "old"
    assert not (tmp_path / ".train.jsonl.abcd1234.tmp").exists()
    assert (tmp_path / ".mine.old").exists()  # a name booktune does not own is never touched


def test_only_the_writing_rank_cleans_up_temp_files(tmp_path, monkeypatch):
    import booktune.outputs

    OutputDir.open(tmp_path, DATA).write_text("train.jsonl", "{}\n")
    in_flight = tmp_path / f".{MANIFEST}.abcd1234.tmp"  # rank 0's manifest, written while rank 1 opens the folder
    in_flight.write_text("{}")
    monkeypatch.setattr(booktune.outputs, "is_main_process", lambda: False)
    OutputDir.open(tmp_path, DATA)
    assert in_flight.exists()
    monkeypatch.setattr(booktune.outputs, "is_main_process", lambda: True)
    OutputDir.open(tmp_path, DATA)
    assert not in_flight.exists()


def test_a_folder_swap_never_leaves_the_target_missing(tmp_path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "w").write_text("1")
    new = tmp_path / "new"
    new.mkdir()
    (new / "w").write_text("2")
    swap_in(new, target)
    assert (target / "w").read_text() == "2" and not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
    assert recover_strays(tmp_path, {"adapter"}) == []


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "inner").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
