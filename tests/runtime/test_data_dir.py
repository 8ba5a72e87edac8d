"""The data directory on a full disk: its files are written whole, or the start says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from caxton.shell.datadir import DataDir, DataDirUnusable
from tests.disk import fill, small_disk


def test_an_empty_node_id_file_a_full_disk_left_is_replaced_by_a_kept_id(tmp_path: Path) -> None:
    (tmp_path / "node-id").write_text("")
    with DataDir(tmp_path) as data:
        made = data.node_id()
        assert made.startswith("node-") and data.node_id() == made
    assert (tmp_path / "node-id").read_text() == made + "\n"


def test_a_data_directory_on_a_full_disk_is_refused_in_words_and_leaves_no_partial_file(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        fill(disk)
        (disk / "data").mkdir()
        with pytest.raises(DataDirUnusable, match=r"cannot write the node id \(No space left"):
            DataDir(disk / "data").node_id()
        assert list((disk / "data").iterdir()) == []
        refused = pytest.raises(DataDirUnusable, match=r"as data directory \(No space left")
        with refused, DataDir(disk / "data"):
            pass
