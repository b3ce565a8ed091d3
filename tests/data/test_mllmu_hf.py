"""The MLLMU-Bench parquet as the Hugging Face datasets library expects it: ``image`` an
``Image`` feature, like the published dataset; pulse's reader reads that form and the plain one."""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq
from PIL import Image

from pulse.data.mllmu import PARQUET_NAME, read_mllmu, write_mllmu
from tests.data.test_mllmu import png, profile


def _load(path) -> datasets.Dataset:
    return datasets.load_dataset("parquet", data_files=str(path), split="train")


def test_written_parquet_loads_with_image_features(tmp_path):
    extras = [(png((0, 255, 0)), "1_pose1.png")]
    write_mllmu(tmp_path, "Full_Set", [profile(1), profile(2)])
    write_mllmu(tmp_path, "Test_Set", [profile(1, extra_images=extras), profile(2)])
    full = _load(tmp_path / "Full_Set" / PARQUET_NAME)
    assert isinstance(full.features["image"], datasets.Image)
    assert isinstance(full[0]["image"], Image.Image) and full[0]["image"].size == (4, 4)
    assert full[1]["ID"] == "2"
    assert full[0]["Classification_Task"]["Pure_Text_Questions"][0]["Correct_Answer"] == "C"
    test = _load(tmp_path / "Test_Set" / PARQUET_NAME)
    assert isinstance(test.features["images"].feature, datasets.Image)
    assert test[0]["images"][0].getpixel((0, 0)) == (0, 255, 0)


def test_reader_reads_the_datasets_form_and_the_plain_form(tmp_path):
    profiles = [profile(1), profile(2, extra_images=[(png(), "x.png")])]
    ours = write_mllmu(tmp_path / "ours", "Test_Set", profiles)
    # As datasets writes it back (to_parquet), and without any features metadata.
    hf = tmp_path / "hf" / "Test_Set" / PARQUET_NAME
    hf.parent.mkdir(parents=True)
    _load(ours).to_parquet(str(hf))
    plain = tmp_path / "plain" / "Test_Set" / PARQUET_NAME
    plain.parent.mkdir(parents=True)
    table = pq.read_table(ours)
    pq.write_table(table.replace_schema_metadata(None), plain)
    assert pq.read_schema(plain).metadata is None
    for root in ("hf", "plain"):
        assert read_mllmu(tmp_path / root, "Test_Set") == profiles, root
