"""The world's generated text reads as written: no capitalised phrase stitched in mid-sentence
("The employer of The person in the image is __.")."""

from __future__ import annotations

import json
import re

from pulse.data.mllmu import list_configs, profile_items, read_mllmu

# A sentence-opening word after a lower-case word or a comma: a template filled with a subject
# written for the start of a sentence.
SEAM = re.compile(r"[a-z,;] (The|This|That|These|A|An|His|Her|Their|Its|Who|What|Which) ")


def _texts(world):
    root = world / "mllmu"
    for config in list_configs(root):
        for profile in read_mllmu(root, config):
            for item in profile_items(profile):
                yield f"{config}/{profile.id}", item.question
                yield f"{config}/{profile.id}", item.answer or ""
            for pair in profile.metadata or []:
                for text in pair:
                    yield f"{config}/{profile.id} metadata", text
    for line in (world / "corpus" / "pretrain.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for value in record.values():
            if isinstance(value, str):
                yield "corpus", value


def test_no_capitalised_phrase_mid_sentence(small_world):
    seams = [(where, text) for where, text in _texts(small_world) if SEAM.search(text)]
    assert not seams, f"{len(seams)} seams, e.g. {seams[:3]}"
