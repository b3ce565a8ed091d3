import io

import pytest
from PIL import Image

from pulse.data.pebench import CSV_NAME, PEBenchColumns, PEBenchRow, read_pebench, write_pebench
from pulse.data.validate import validate
from pulse.errors import DataError


def png(color=(0, 128, 255)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


ROWS = [
    PEBenchRow(
        "Ava Stone",
        "birthday party",
        "p001/e01.png",
        png((1, 0, 0)),
        ["cake", "candles", "balloons"],
        "train",
        "Ava blows out candles.",
    ),
    PEBenchRow(
        "Ava Stone", "ski trip", "p001/e02.png", png((2, 0, 0)), ["snow", "skis, poles"], "test", ""
    ),
    PEBenchRow("Bo Lin", "birthday party", "p002/e01.png", png((3, 0, 0)), ["cake"], "", ""),
]


def csv_file(tmp_path, text, images=("a.png",)):
    for name in images:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(png())
    path = tmp_path / CSV_NAME
    path.write_text(text)
    return path


def error(path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        read_pebench(path, **kwargs)
    assert str(path) in str(info.value)
    return info.value


def test_round_trip(tmp_path):
    path = write_pebench(tmp_path, ROWS)
    assert path == tmp_path / CSV_NAME
    assert (tmp_path / "p002" / "e01.png").read_bytes() == ROWS[2].image
    assert read_pebench(path) == ROWS
    assert read_pebench(tmp_path) == ROWS  # the folder works too


def test_rewrite_gives_identical_bytes(tmp_path):
    first = write_pebench(tmp_path / "a", ROWS).read_bytes()
    second = write_pebench(tmp_path / "b", read_pebench(tmp_path / "a")).read_bytes()
    assert first == second


def test_keyword_forms_and_header_case(tmp_path):
    path = csv_file(
        tmp_path,
        "Person,EVENT,Image,Keywords\n"
        'P,E,a.png,"sun; sea ;sand"\n'
        'P,E,a.png,"sun, sea"\n'
        'P,E,a.png,"[""sun, bright"", ""sea""]"\n',
    )
    assert [r.keywords for r in read_pebench(path)] == [
        ["sun", "sea", "sand"],
        ["sun", "sea"],
        ["sun, bright", "sea"],
    ]
    assert {r.split for r in read_pebench(path)} == {""}


def test_custom_columns_and_image_root(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "x.png").write_bytes(png())
    path = tmp_path / "meta" / "pe.csv"
    path.parent.mkdir()
    path.write_text("who,scene,file,words,fold\nP,E,x.png,a;b,forget\n")
    cols = PEBenchColumns(person="who", event="scene", image="file", keywords="words", split="fold")
    (row,) = read_pebench(path, image_root=tmp_path / "imgs", columns=cols)
    assert (row.person, row.event, row.keywords, row.split) == ("P", "E", ["a", "b"], "forget")
    err = error(path, columns=PEBenchColumns())
    assert err.field == "person" and "missing column 'person'" in str(err)


def test_explicit_optional_column_must_exist(tmp_path):
    path = csv_file(tmp_path, "person,event,image,keywords\nP,E,a.png,k\n")
    assert error(path, columns=PEBenchColumns(split="fold")).field == "fold"
    assert read_pebench(path, columns=PEBenchColumns(split=None))[0].split == ""


def test_validate_summary(tmp_path):
    write_pebench(tmp_path, ROWS)
    summary = validate("pebench", tmp_path)
    assert "3 images, 2 persons, 2 events" in summary
    assert "splits: (none) 1, test 1, train 1" in summary


# --- validation -------------------------------------------------------------------------------


def test_missing_image_file(tmp_path):
    path = csv_file(tmp_path, "person,event,image,keywords\nP,E,a.png,k\nP,E,b.png,k\n")
    err = error(path)
    assert (err.row, err.field) == (3, "image") and "not found" in str(err)


@pytest.mark.parametrize("truncate", [False, True])
def test_unreadable_image(tmp_path, truncate):
    path = csv_file(tmp_path, "person,event,image,keywords\nP,E,a.png,k\nP,E,b.png,k\n")
    # A cut-off PNG still opens (its header is intact); only a full check finds the damage.
    (tmp_path / "b.png").write_bytes(png()[:-20] if truncate else b"GIF89a broken")
    err = error(path)
    assert (err.row, err.field) == (3, "image") and "do not decode" in str(err)


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "sub/../../x.png", "C:\\x.png"])
def test_path_escape(tmp_path, bad):
    (tmp_path / "outside.png").write_bytes(png())
    root = tmp_path / "data"
    root.mkdir()
    path = csv_file(root, f"person,event,image,keywords\nP,E,a.png,k\nP,E,{bad},k\n")
    err = error(path)
    assert (err.row, err.field) == (3, "image") and "root" in str(err)


def test_symlink_escape(tmp_path):
    (tmp_path / "outside.png").write_bytes(png())
    root = tmp_path / "data"
    root.mkdir()
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    err = error(csv_file(root, "person,event,image,keywords\nP,E,link.png,k\n", images=()))
    assert (err.row, err.field) == (2, "image") and "outside" in str(err)


def test_empty_values(tmp_path):
    path = csv_file(tmp_path, "person,event,image,keywords\nP,E,a.png,k\n,E,a.png,k\n")
    assert (error(path).row, error(path).field) == (3, "person")
    path.write_text("person,event,image,keywords\nP,E,a.png, ; \n")
    err = error(path)
    assert (err.row, err.field) == (2, "keywords") and "at least one keyword" in str(err)
    path.write_text('person,event,image,keywords\nP,E,a.png,"[1, 2]"\n')
    assert "list of strings" in str(error(path))


def test_empty_file_and_header_only(tmp_path):
    path = csv_file(tmp_path, "")
    assert "empty" in str(error(path))
    path.write_text("person,event,image,keywords\n")
    assert "no data rows" in str(error(path))


def test_writer_checks(tmp_path):
    with pytest.raises(DataError, match="zero rows"):
        write_pebench(tmp_path, [])
    escaping = PEBenchRow("P", "E", "../x.png", png(), ["k"])
    with pytest.raises(DataError) as info:
        write_pebench(tmp_path / "out", [ROWS[0], escaping])
    assert (info.value.row, info.value.field) == (3, "image")
    assert not (tmp_path / "x.png").exists()
    clash = PEBenchRow("P", "E", ROWS[0].image_path, png((9, 9, 9)), ["k"])
    with pytest.raises(DataError, match="two different images"):
        write_pebench(tmp_path / "out", [ROWS[0], clash])
    with pytest.raises(DataError, match="do not decode"):
        write_pebench(tmp_path / "out", [PEBenchRow("P", "E", "a.png", b"x", ["k"])])
