"""The generalisation splits (the Test_Set questions as the protocol asks them) hold no
question wording and no rendering that any training data of the world holds."""

from __future__ import annotations

import json

from pulse.data.mllmu import read_mllmu
from pulse.protocol.generalisation import unseen_items


def test_generalisation_items_are_never_trained_on(small_world):
    corpus = [json.loads(line) for line in (small_world / "corpus" / "pretrain.jsonl").open()]
    ft_data = read_mllmu(small_world / "mllmu", "ft_Data")
    train_text = "\n".join(json.dumps(r) for r in corpus)
    train_text += "\n".join(q for p in ft_data for q, _ in p.metadata or [])
    trained_images = {(small_world / r["image"]).read_bytes() for r in corpus if r["image"]}
    trained_images |= {p.image for p in ft_data}
    # the Full_Set the fine-tuning and unlearning pairs go with shows the canonical rendering
    trained_images |= {p.image for p in read_mllmu(small_world / "mllmu", "Full_Set")}
    items = [i for p in read_mllmu(small_world / "mllmu", "Test_Set") for i in unseen_items(p)]
    assert items and any(i.image for i in items)
    for item in items:
        assert item.question not in train_text, item.question
        assert item.image is None or item.image not in trained_images, item.id
