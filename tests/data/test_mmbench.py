import base64
import io

import pytest
from PIL import Image

from pulse.data.mmbench import (
    COLUMNS,
    MMBenchRow,
    base_index,
    read_mmbench,
    rotations,
    row_item,
    write_mmbench,
)
from pulse.data.schema import ItemKind, Modality
from pulse.data.validate import validate
from pulse.errors import DataError


def image(color=(10, 20, 30), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format=fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


ROWS = [
    MMBenchRow(
        index=0,
        question="What is shown?\nPick one.",  # a newline forces a quoted, multi-line cell
        options={"A": "a cat", "B": "a dog", "C": 'a "bird"', "D": "a\tfish"},
        answer="C",
        image=image(),
        hint="Look closely.",
        category="object_localization",
        l2_category="finegrained_perception (instance-level)",
        source="coco",
        comment="",
        split="dev",
    ),
    MMBenchRow(
        index=1,
        question="Yes or no?",
        options={"A": "yes", "B": "no"},  # empty C / D, no hint
        answer="B",
        image=image((200, 0, 0), "JPEG"),
        category="image_scene",
        split="dev",
    ),
]


def tsv(tmp_path, header, lines, name="bench.tsv"):
    path = tmp_path / name
    path.write_text("\n".join(["\t".join(header), *("\t".join(c) for c in lines)]) + "\n")
    return path


def cells(index="5", question="Q?", a="x", b="y", c="", d="", answer="A", img=None, hint=""):
    img = b64(image()) if img is None else img
    return [index, question, hint, a, b, c, d, answer, "cat", img, "src", "l2", "", "dev"]


def error(path) -> DataError:
    with pytest.raises(DataError) as info:
        read_mmbench(path)
    assert str(path) in str(info.value)
    return info.value


# --- round trips ------------------------------------------------------------------------------


def test_round_trip(tmp_path):
    path = write_mmbench(tmp_path / "dev.tsv", ROWS)
    assert path.read_text().splitlines()[0].split("\t") == list(COLUMNS)
    assert read_mmbench(path) == ROWS


def test_rewrite_gives_identical_bytes(tmp_path):
    first = write_mmbench(tmp_path / "a.tsv", ROWS).read_bytes()
    write_mmbench(tmp_path / "b.tsv", read_mmbench(tmp_path / "a.tsv"))
    assert (tmp_path / "b.tsv").read_bytes() == first


def test_round_trip_rotations(tmp_path):
    rows = [copy for row in ROWS for copy in rotations(row)]
    path = write_mmbench(tmp_path / "circular.tsv", rows)
    assert read_mmbench(path) == rows


def test_capitalised_headers_and_nan(tmp_path):
    header = [c.capitalize() if c not in "ABCD" else c for c in COLUMNS]
    assert "L2-category" in header and "Category" in header
    row = cells(c="nan", d="NaN", hint="nan")
    row[11] = "attribute_reasoning"
    path = tsv(tmp_path, header, [row])
    (back,) = read_mmbench(path)
    assert back.options == {"A": "x", "B": "y"} and back.hint == ""
    assert back.l2_category == "attribute_reasoning" and back.category == "cat"


def test_optional_columns_may_be_absent(tmp_path):
    header = ["index", "question", "A", "B", "answer", "image"]
    path = tsv(tmp_path, header, [["3", "Q?", "x", "y", "B", b64(image())]])
    (back,) = read_mmbench(path)
    assert (back.index, back.answer, back.hint, back.category, back.split) == (3, "B", "", "", "")


def test_image_index_references(tmp_path):
    shared = image((1, 2, 3))
    path = tsv(
        tmp_path,
        COLUMNS,
        [cells("7", img="12"), cells("12", img=b64(shared)), cells("1000012", img="12")],
    )
    rows = read_mmbench(path)
    assert [r.image for r in rows] == [shared, shared, shared]


def test_rotations():
    row = ROWS[0]
    copies = rotations(row)
    assert [c.index for c in copies] == [0, 1_000_000, 2_000_000, 3_000_000]
    assert copies[0] == row
    assert copies[1].options == {"A": "a dog", "B": 'a "bird"', "C": "a\tfish", "D": "a cat"}
    for copy in copies:
        assert copy.options[copy.answer] == 'a "bird"'
        assert base_index(copy) == 0
    assert [c.answer for c in copies] == ["C", "B", "A", "D"]
    two = rotations(ROWS[1])
    assert [(c.options, c.answer) for c in two] == [
        ({"A": "yes", "B": "no"}, "B"),
        ({"A": "no", "B": "yes"}, "A"),
    ]


def test_row_item():
    item = row_item(rotations(ROWS[0])[2])
    assert item.id == "mmbench/2000000" and item.entity_id == ""
    assert item.kind is ItemKind.MCQ and item.modality is Modality.MULTIMODAL
    assert item.answer_text == 'a "bird"' and item.image == ROWS[0].image
    assert item.meta == {
        "category": "object_localization",
        "l2_category": "finegrained_perception (instance-level)",
        "hint": "Look closely.",
        "base_index": "0",
    }


def test_validate_summary(tmp_path):
    rows = [copy for row in ROWS for copy in rotations(row)]
    summary = validate("mmbench", write_mmbench(tmp_path / "c.tsv", rows))
    assert "6 rows, 2 questions, 4 circular copies, 2 categories" in summary


# --- validation -------------------------------------------------------------------------------


def test_missing_column(tmp_path):
    header = [c for c in COLUMNS if c != "answer"]
    row = cells()
    del row[7]
    err = error(tsv(tmp_path, header, [row]))
    assert err.field == "answer" and "missing column 'answer'" in str(err)


def test_bad_base64(tmp_path):
    path = tsv(tmp_path, COLUMNS, [cells("1"), cells("2", img="abc$%^")])
    err = error(path)
    assert (err.row, err.field) == (3, "image") and "base64" in str(err)


def test_base64_of_non_image(tmp_path):
    path = tsv(tmp_path, COLUMNS, [cells("1", img=b64(b"hello world"))])
    err = error(path)
    assert (err.row, err.field) == (2, "image") and "do not decode" in str(err)


def test_answer_names_empty_option(tmp_path):
    err = error(tsv(tmp_path, COLUMNS, [cells("1"), cells("2", answer="C")]))
    assert (err.row, err.field) == (3, "answer") and "options: A, B" in str(err)


def test_line_numbers_follow_multiline_cells(tmp_path):
    write_mmbench(tmp_path / "ok.tsv", ROWS)  # row 0 spans lines 2-3, row 1 is on line 4
    text = (tmp_path / "ok.tsv").read_text().replace("\tB\timage_scene", "\tZ\timage_scene")
    (tmp_path / "bad.tsv").write_text(text)
    err = error(tmp_path / "bad.tsv")
    assert (err.row, err.field) == (4, "answer")


def test_dangling_image_reference(tmp_path):
    err = error(tsv(tmp_path, COLUMNS, [cells("1"), cells("2", img="99")]))
    assert (err.row, err.field) == (3, "image") and "99" in str(err)
    chained = tsv(tmp_path, COLUMNS, [cells("1", img="2"), cells("2", img="1")], name="c.tsv")
    assert error(chained).field == "image"


def test_bad_and_duplicate_index(tmp_path):
    err = error(tsv(tmp_path, COLUMNS, [cells("x1")]))
    assert (err.row, err.field) == (2, "index")
    err = error(tsv(tmp_path, COLUMNS, [cells("4"), cells("4")], name="d.tsv"))
    assert (err.row, err.field) == (3, "index") and "line 2" in str(err)


def test_empty_file_header_only_and_ragged(tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert "empty" in str(error(empty))
    assert "no data rows" in str(error(tsv(tmp_path, COLUMNS, [], name="h.tsv")))
    err = error(tsv(tmp_path, COLUMNS, [cells()[:5]], name="r.tsv"))
    assert err.row == 2 and "expected 14 cells" in str(err)
    assert "not found" in str(error(tmp_path / "missing.tsv"))


def test_writer_checks(tmp_path):
    with pytest.raises(DataError, match="zero rows"):
        write_mmbench(tmp_path / "x.tsv", [])
    bad = MMBenchRow(index=1, question="q", options={"A": "x", "E": "y"}, answer="A", image=b"")
    with pytest.raises(DataError) as info:
        write_mmbench(tmp_path / "x.tsv", [ROWS[0], bad])
    assert (info.value.row, info.value.field) == (3, "E")
    with pytest.raises(DataError, match="already used on line 2"):
        write_mmbench(tmp_path / "x.tsv", [ROWS[0], ROWS[0]])
