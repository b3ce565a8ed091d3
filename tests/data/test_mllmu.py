import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pulse.data.mllmu import (
    MCQ,
    PARQUET_NAME,
    MLLMUProfile,
    OpenQuestion,
    count_profiles,
    list_configs,
    profile_entity,
    profile_items,
    profile_train_pairs,
    read_mllmu,
    write_mllmu,
)
from pulse.data.schema import EntityKind, ItemKind, Modality
from pulse.data.validate import validate
from pulse.errors import ConfigError, DataError


def png(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def profile(i: int, **changes) -> MLLMUProfile:
    options = {"A": "Paris", "B": "Lyon", "C": "Nice", "D": "Lille"}
    fields = dict(
        id=str(i),
        image=png((i * 10 % 256, 0, 0)),
        image_path=f"{i}.png",
        biography={"Name": f"Person {i}", "Born": "1970", "Employment": {"role": "chef"}},
        question=f"Who is person {i}?",
        answer=f"Person {i} is a chef.",
        mcq_image=[
            MCQ("Where does this person live?", options, "B"),
            MCQ("Age?", {"A": "1", "B": "2"}, "A"),
        ],
        mcq_text=[MCQ(f"Where does Person {i} live?", {"A": "x", "B": "y", "C": "z"}, "C")],
        mask=[
            OpenQuestion("This person works as a __.", "chef", "Image_Textual"),
            OpenQuestion(f"Person {i} works as a __.", "chef", "Pure_Text"),
        ],
        generation=[OpenQuestion("What is their job?", "A chef.", "Image_Textual")],
    )
    fields.update(changes)
    return MLLMUProfile(**fields)


def rows_of(path):
    return pq.read_table(path).to_pylist()


def rewrite(path, records):
    """Write records with an inferred schema, so a test can break any cell."""
    pq.write_table(pa.Table.from_pylist(records), path)


def error(tmp_path, records, config="Full_Set") -> DataError:
    path = tmp_path / "bad" / config / PARQUET_NAME
    path.parent.mkdir(parents=True)
    rewrite(path, records)
    with pytest.raises(DataError) as info:
        read_mllmu(tmp_path / "bad", config)
    return info.value


@pytest.fixture
def records(tmp_path):
    path = write_mllmu(tmp_path / "good", "Full_Set", [profile(1), profile(2)])
    return rows_of(path)


# --- round trips ------------------------------------------------------------------------------


def test_round_trip_full_set(tmp_path):
    profiles = [profile(1), profile(2), profile(3)]
    path = write_mllmu(tmp_path, "Full_Set", profiles)
    assert path == tmp_path / "Full_Set" / PARQUET_NAME
    assert read_mllmu(tmp_path, "Full_Set") == profiles
    assert read_mllmu(path) == profiles  # a single file works too
    assert "metadata" not in pq.read_schema(path).names
    assert "images" not in pq.read_schema(path).names


def test_round_trip_test_set_extra_images(tmp_path):
    extras = [(png((0, 255, 0)), "1_pose1_gen1.png"), (png((0, 0, 255)), "1_pose2_gen1.png")]
    profiles = [profile(1, extra_images=extras), profile(2)]
    write_mllmu(tmp_path, "Test_Set", profiles)
    back = read_mllmu(tmp_path, "Test_Set")
    assert back == profiles
    assert profile_entity(back[0]).images == (profiles[0].image, extras[0][0], extras[1][0])


def test_round_trip_metadata_and_train_pairs(tmp_path):
    meta = [("What does he do?", "He cooks."), ("Where?", "In Paris.")]
    profiles = [profile(1, metadata=meta), profile(2, metadata=[])]
    write_mllmu(tmp_path, "ft_Data", profiles)
    back = read_mllmu(tmp_path, "ft_Data")
    assert back == profiles
    pairs = profile_train_pairs(back[0])
    assert [(p.question, p.answer) for p in pairs] == meta
    assert all(p.image == profiles[0].image and p.entity_id == "1" for p in pairs)
    assert profile_train_pairs(back[1]) == []
    # Without metadata, the row's own question / answer is the training pair.
    assert [(p.question, p.answer) for p in profile_train_pairs(profile(3))] == [
        ("Who is person 3?", "Person 3 is a chef.")
    ]


def test_rewrite_gives_identical_bytes(tmp_path):
    profiles = [profile(1, metadata=[("q", "a")], extra_images=[(png(), "x.png")]), profile(2)]
    first = write_mllmu(tmp_path / "a", "forget_5", profiles).read_bytes()
    second = write_mllmu(tmp_path / "b", "forget_5", profiles).read_bytes()
    again = write_mllmu(tmp_path / "a", "forget_5", profiles).read_bytes()
    assert first == second == again


def test_list_configs_and_custom_names(tmp_path):
    for config in ("forget_5", "retain_95", "forget_mine"):
        write_mllmu(tmp_path, config, [profile(1)])
    (tmp_path / "notes").mkdir()
    assert list_configs(tmp_path) == ["forget_5", "forget_mine", "retain_95"]
    with pytest.raises(ConfigError, match="forget_"):
        write_mllmu(tmp_path, "my_split", [profile(1)])


def test_json_string_columns_and_answer_text(tmp_path, records):
    # Some mirrors store the nested columns as JSON text and the answer as the option's text.
    for rec in records:
        task = rec["Classification_Task"]
        task["Image_Textual_Questions"][0]["Correct_Answer"] = "Lyon"
        rec["Classification_Task"] = json.dumps(task)
        rec["Mask_Task"] = json.dumps(rec["Mask_Task"])
        rec["Generation_Task"] = json.dumps(rec["Generation_Task"])
    path = tmp_path / "mirror.parquet"
    rewrite(path, records)
    assert read_mllmu(path) == [profile(1), profile(2)]


def test_images_column_without_image(tmp_path, records):
    # Copies of Test_Set that carry only ``images``: the first one is the canonical image.
    second = png((1, 2, 3))
    for rec in records:
        rec["images"] = [rec.pop("image"), {"bytes": second, "path": "pose.png"}]
    path = tmp_path / "t.parquet"
    rewrite(path, records)
    back = read_mllmu(path)
    assert back[0].image == profile(1).image and back[0].image_path == "1.png"
    assert back[0].extra_images == [(second, "pose.png")]


# --- conversions ------------------------------------------------------------------------------


def test_profile_entity():
    entity = profile_entity(profile(7))
    assert entity.id == "7" and entity.kind is EntityKind.PERSON and entity.name == "Person 7"
    assert entity.attributes == {"Born": "1970", "Employment": '{"role": "chef"}'}
    assert entity.images == (profile(7).image,)


def test_profile_items():
    p = profile(7)
    items = profile_items(p)
    assert [i.id for i in items] == [
        "7/mcq/multimodal/0",
        "7/mcq/multimodal/1",
        "7/mcq/text/0",
        "7/cloze/0",
        "7/cloze/1",
        "7/generation/0",
    ]
    by_id = {i.id: i for i in items}
    assert by_id["7/mcq/multimodal/0"].image == p.image
    assert by_id["7/mcq/multimodal/0"].answer_text == "Lyon"
    assert by_id["7/mcq/text/0"].image is None and by_id["7/mcq/text/0"].modality is Modality.TEXT
    assert by_id["7/cloze/0"].kind is ItemKind.CLOZE
    assert by_id["7/cloze/0"].modality is Modality.MULTIMODAL
    assert by_id["7/cloze/1"].modality is Modality.TEXT and by_id["7/cloze/1"].image is None
    assert by_id["7/generation/0"].kind is ItemKind.GENERATION
    assert by_id["7/generation/0"].answer == "A chef."
    assert profile_items(p) == items  # stable


def test_validate_summary(tmp_path):
    write_mllmu(tmp_path, "forget_5", [profile(1), profile(2)])
    write_mllmu(tmp_path, "ft_Data", [profile(1, metadata=[("q", "a")])])
    summary = validate("mllmu", tmp_path)
    assert "2 configs" in summary and "forget_5: 2 profiles" in summary
    assert "4 mcq multimodal" in summary and "1 training pairs" in summary
    assert "\n" not in summary
    with pytest.raises(ConfigError):
        validate("nope", tmp_path)


# --- validation -------------------------------------------------------------------------------


def test_count_profiles_without_reading_them(tmp_path):
    write_mllmu(tmp_path, "Full_Set", [profile(i) for i in range(1, 4)])
    assert count_profiles(tmp_path, "Full_Set") == len(read_mllmu(tmp_path, "Full_Set")) == 3
    with pytest.raises(DataError, match="configs found: Full_Set"):
        count_profiles(tmp_path, "Test_Set")
    broken = tmp_path / "forget_1" / PARQUET_NAME
    broken.parent.mkdir()
    broken.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        count_profiles(tmp_path, "forget_1")


def test_missing_config_lists_existing(tmp_path):
    write_mllmu(tmp_path, "forget_5", [profile(1)])
    write_mllmu(tmp_path, "retain_95", [profile(2)])
    with pytest.raises(DataError) as info:
        read_mllmu(tmp_path, "forget_10")
    assert "forget_10" in str(info.value)
    assert "configs found: forget_5, retain_95" in str(info.value)
    with pytest.raises(DataError, match="name a config"):
        read_mllmu(tmp_path)


def test_missing_column(tmp_path, records):
    for rec in records:
        del rec["ID"]
    err = error(tmp_path, records)
    assert err.field == "ID" and "missing column 'ID'" in str(err)
    assert PARQUET_NAME in err.file


def test_unreadable_image(tmp_path, records):
    records[1]["image"] = {"bytes": b"not an image", "path": "2.png"}
    err = error(tmp_path, records)
    assert (err.row, err.field) == (2, "image")
    assert "do not decode as an image" in str(err) and "row 2" in str(err)


def test_bad_extra_image(tmp_path, records):
    for rec in records:
        rec["images"] = [
            {"bytes": png(), "path": "ok.png"},
            {"bytes": b"\x89PNG junk", "path": "x"},
        ]
    err = error(tmp_path, records)
    assert (err.row, err.field) == (1, "images[1]")


def test_biography_not_json(tmp_path, records):
    records[0]["biography"] = "{Name: Bob"
    err = error(tmp_path, records)
    assert (err.row, err.field) == (1, "biography") and "not valid JSON" in str(err)


def test_biography_without_name(tmp_path, records):
    records[1]["biography"] = json.dumps({"Born": "1970"})
    err = error(tmp_path, records)
    assert (err.row, err.field) == (2, "biography") and "'Name'" in str(err)


def test_answer_letter_of_empty_option(tmp_path, records):
    mcq = records[1]["Classification_Task"]["Pure_Text_Questions"][0]
    mcq["Correct_Answer"] = "D"  # this question has only A-C
    err = error(tmp_path, records)
    assert err.row == 2
    assert err.field == "Classification_Task.Pure_Text_Questions[0].Correct_Answer"
    assert "options: A, B, C" in str(err)


def test_bad_task_type(tmp_path, records):
    records[0]["Mask_Task"][1]["Type"] = "Audio"
    err = error(tmp_path, records)
    assert (err.row, err.field) == (1, "Mask_Task[1].Type")


def test_bad_metadata_json(tmp_path, records):
    for rec in records:
        rec["metadata"] = '[{"Question": "q", "Answer": "a"}]'
    records[1]["metadata"] = "[{"
    err = error(tmp_path, records, "ft_Data")
    assert (err.row, err.field) == (2, "metadata")


def test_duplicate_id(tmp_path, records):
    records[1]["ID"] = records[0]["ID"]
    err = error(tmp_path, records)
    assert (err.row, err.field) == (2, "ID") and "row 1" in str(err)


def test_zero_rows_and_empty_file(tmp_path, records):
    path = tmp_path / "none.parquet"
    pq.write_table(pa.Table.from_pylist(records).slice(0, 0), path)
    with pytest.raises(DataError, match="no rows"):
        read_mllmu(path)
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_mllmu(empty)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("id,name\n")
    with pytest.raises(DataError, match="not a readable parquet"):
        read_mllmu(garbage)


def test_writer_refuses_what_reader_would(tmp_path):
    with pytest.raises(DataError, match="zero profiles"):
        write_mllmu(tmp_path, "Full_Set", [])
    bad_answer = profile(1, mcq_text=[MCQ("q", {"A": "x", "B": "y"}, "y")])
    with pytest.raises(DataError) as info:
        write_mllmu(tmp_path, "Full_Set", [profile(2), bad_answer])
    assert info.value.row == 2 and info.value.field == "mcq_text"
    with pytest.raises(DataError) as info:
        write_mllmu(tmp_path, "Full_Set", [profile(1, image=b"nope")])
    assert info.value.field == "image"
    with pytest.raises(DataError, match="already used"):
        write_mllmu(tmp_path, "Full_Set", [profile(1), profile(1)])
    assert not (tmp_path / "Full_Set" / PARQUET_NAME).exists()
