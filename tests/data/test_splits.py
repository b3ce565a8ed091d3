import pytest

from pulse.data.splits import read_split, write_split
from pulse.errors import DataError


def test_round_trip(tmp_path):
    path = write_split(tmp_path / "forget.txt", ["b", "a", "10"])
    assert path.read_text() == "b\na\n10\n"
    assert read_split(path) == ["b", "a", "10"]  # order is kept


def test_comments_and_blank_lines(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("# forget set\n\n  a  \nb # the second\n#c\n")
    assert read_split(path) == ["a", "b"]


def test_known_ids(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("# header\na\nzz\n")
    assert read_split(path, known=["a", "zz", "q"]) == ["a", "zz"]
    with pytest.raises(DataError) as info:
        read_split(path, known=["a"])
    assert (info.value.row, str(path) in str(info.value)) == (3, True)
    assert "'zz'" in str(info.value)


def test_duplicate_id(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("a\nb\na\n")
    with pytest.raises(DataError, match="listed twice") as info:
        read_split(path)
    assert info.value.row == 3


def test_empty_and_missing(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("# nothing here\n\n")
    with pytest.raises(DataError, match="empty"):
        read_split(path)
    with pytest.raises(DataError, match="not found"):
        read_split(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="empty split"):
        write_split(tmp_path / "new.txt", [])
    assert not (tmp_path / "new.txt").exists()


@pytest.mark.parametrize("bad", ["a#1", " b", "c\nd", "", "e\r"])
def test_write_refuses_ids_that_would_not_read_back(tmp_path, bad):
    with pytest.raises(DataError) as info:
        write_split(tmp_path / "s.txt", ["ok", bad])
    assert info.value.row == 2
    with pytest.raises(DataError, match="twice"):
        write_split(tmp_path / "s.txt", ["ok", "ok"])
    assert not (tmp_path / "s.txt").exists()
