"""Build the synthetic world and write it in the published formats.

Layout under the output directory::

    world.json                      ground truth: people, events, scenes, item plans, splits
    images/people/<id>/<k>.png      portrait renderings (k < n_train_renderings: seen in
                                    training; the others are held out to test recognition)
    images/scenes/<id>/<k>.png      celebrities photographed at events (pre-training)
    images/skills/<k>.png           visual-skill pictures of the pre-training corpus
    corpus/pretrain.jsonl           the pre-training corpus (see corpus.py)
    mllmu/<config>/train-00000-of-00001.parquet
    mmbench/dev.tsv                 held-out general-capability benchmark (with rotations)
    mmbench/train.tsv               the skills instruction data, kept apart from dev
    pebench/PEBench.csv, pebench/images/...

The world is written to a sibling temporary directory and renamed into place at the end, so an
interrupted build never leaves a directory that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from pulse.data.mllmu import MCQ, MLLMUProfile, OpenQuestion, write_mllmu
from pulse.data.mmbench import MMBenchRow, rotations, write_mmbench
from pulse.data.pebench import PEBenchRow, write_pebench
from pulse.data.schema import decode_image, encode_png
from pulse.errors import ConfigError
from pulse.files import write_json
from pulse.world.corpus import celebrity_records, skill_records
from pulse.world.images import draw_portrait, draw_scene, event_style
from pulse.world.people import HOLDOUT_GROUPS, Person, invent_holdout, invent_people
from pulse.world.questions import ItemPlan, benchmark_tasks, plan_items, training_pairs
from pulse.world.skills import CATEGORIES, SkillQuestion, make_questions
from pulse.world.vocab import EVENTS

# 4: cloze questions without a capitalised subject mid-sentence; 5: holdout people
WORLD_FORMAT_VERSION = 5
# The MLLMU-Bench configs of the holdout people (never trained on: membership inference).
HOLDOUT_FICTITIOUS = "Holdout_Set"
HOLDOUT_CELEBRITIES = "Holdout_Celebrities"


@dataclass(frozen=True)
class WorldSize:
    celebrities: int
    fictitious: int
    pebench_people: int
    events: int
    events_per_person: int
    skills_train: int
    skills_dev: int
    fame_most: int
    fame_least: int
    renderings: int = 6
    train_renderings: int = 4
    mcq_per_modality: int = 5
    cloze_per_modality: int = 2
    forget_percents: tuple[int, ...] = (5, 10, 15, 50)
    skill_mcq_orders: int = 3
    # People made like the fictitious people and the celebrities and never trained on (the
    # non-members of membership inference). None: a quarter of their group, at least 4.
    holdout_fictitious: int | None = None
    holdout_celebrities: int | None = None

    def __post_init__(self) -> None:
        defaults = {
            "holdout_fictitious": self.fictitious,
            "holdout_celebrities": self.celebrities,
        }
        for name, group in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, max(4, group // 4))


SIZES: dict[str, WorldSize] = {
    "small": WorldSize(
        celebrities=12,
        fictitious=16,
        pebench_people=6,
        events=6,
        events_per_person=3,
        skills_train=150,
        skills_dev=40,
        fame_most=10,
        fame_least=3,
    ),
    # The embedded default: sized so that a first demo (two models, two oracles, every
    # scenario) fits its time budget on 2 cores; interval widths per size: docs/world.md.
    "default": WorldSize(
        celebrities=20,
        fictitious=24,
        pebench_people=8,
        events=8,
        events_per_person=8,
        skills_train=300,
        skills_dev=100,
        fame_most=20,
        # a floor of 6 corpus mentions: the median celebrity is known by name and by face
        fame_least=6,
        skill_mcq_orders=2,
    ),
    # About twice the default's people (the default before the demo's budget halved it):
    # intervals about 1.4x narrower for a little over twice the training time.
    "medium": WorldSize(
        celebrities=40,
        fictitious=50,
        pebench_people=10,
        events=10,
        events_per_person=8,
        skills_train=700,
        skills_dev=160,
        fame_most=20,
        fame_least=6,
        skill_mcq_orders=2,
    ),
    # Twice the medium world's people.
    "large": WorldSize(
        celebrities=80,
        fictitious=100,
        pebench_people=20,
        events=20,
        events_per_person=8,
        skills_train=1200,
        skills_dev=200,
        fame_most=20,
        fame_least=6,
        skill_mcq_orders=2,
    ),
}


@dataclass
class WorldSummary:
    path: Path
    seed: int
    size: str
    counts: dict[str, int] = field(default_factory=dict)
    reused: bool = False

    def render(self) -> str:
        head = "reused existing world" if self.reused else "built world"
        rows = ", ".join(f"{k}: {v}" for k, v in self.counts.items())
        return f"{head} at {self.path} (seed {self.seed}, size {self.size})\n{rows}"


def _rng(seed: int, stream: str) -> random.Random:
    """An independent generator per part of the world: changing one part (say, the number of
    skills questions) leaves the others' bytes unchanged."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def build_world(out: str | Path, seed: int = 0, size: str = "default") -> WorldSummary:
    """Build the world into ``out``; an existing world of the same seed and size is reused."""
    if size not in SIZES:
        raise ConfigError(
            f"--size: unknown world size {size!r}; expected one of {', '.join(SIZES)}"
        )
    out = Path(out)
    existing = out / "world.json"
    if existing.is_file():
        meta = json.loads(existing.read_text(encoding="utf-8"))
        # The size's whole definition, not only its name: a size resized by a newer version is
        # another world, never reused as this one.
        spec = json.loads(json.dumps(asdict(SIZES[size])))  # as world.json holds it: lists
        wanted = (seed, size, WORLD_FORMAT_VERSION, spec)
        found = (meta.get("seed"), meta.get("size"), meta.get("format"), meta.get("sizes"))
        if found == wanted:
            return WorldSummary(out, seed, size, meta.get("counts", {}), reused=True)
        if found[:2] == wanted[:2]:
            raise ConfigError(
                f"{out} holds a world of seed {seed} and size {size!r} as an earlier version of "
                f"pulse built it (format {meta.get('format')}, this version's is "
                f"{WORLD_FORMAT_VERSION}, or another definition of the size); delete it to rebuild"
            )
        raise ConfigError(
            f"{out} already holds a different world (seed {meta.get('seed')}, size "
            f"{meta.get('size')}); choose another --out or delete it"
        )
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a world directory; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        counts = _write_world(tmp, seed, size, SIZES[size])
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return WorldSummary(out, seed, size, counts)


def _save_png(root: Path, rel: str, img: Image.Image) -> bytes:
    data = encode_png(img)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _write_world(root: Path, seed: int, size_name: str, size: WorldSize) -> dict[str, int]:
    if size.events > len(EVENTS):
        raise ConfigError(f"at most {len(EVENTS)} events are defined, {size.events} asked")
    people = invent_people(
        _rng(seed, "people"),
        {
            "celebrity": size.celebrities,
            "fictitious": size.fictitious,
            "pebench": size.pebench_people,
        },
        (size.fame_most, size.fame_least),
    )
    by_group = {
        g: [p for p in people if p.group == g] for g in ("celebrity", "fictitious", "pebench")
    }
    names = {p.id: p.name for p in people}
    # Holdout people from streams of their own: everyone above keeps their bytes.
    holdout = invent_holdout(
        _rng(seed, "holdout-people"),
        {"fictitious": size.holdout_fictitious, "celebrity": size.holdout_celebrities},
        people,
        (size.fame_most, size.fame_least),
    )

    # portraits: every rendering of every person
    portraits: dict[str, list[bytes]] = {}
    images_rng = _rng(seed, "portraits")
    for p in people:
        portraits[p.id] = [
            _save_png(root, _portrait_rel(p.id, k), draw_portrait(p.face, k, images_rng))
            for k in range(size.renderings)
        ]

    holdout_rng = _rng(seed, "holdout-portraits")
    for p in holdout:
        portraits[p.id] = [
            _save_png(root, _portrait_rel(p.id, k), draw_portrait(p.face, k, holdout_rng))
            for k in range(size.renderings)
        ]

    events = [
        {"id": f"e{k + 1:02d}", "name": name, "keywords": list(keywords), "style": event_style(k)}
        for k, (name, keywords) in enumerate(EVENTS[: size.events])
    ]

    # one set of skills pictures: the corpus's instruction data and mmbench/train.tsv
    skills_train = make_questions(_rng(seed, "skills-train"), size.skills_train, "train")
    corpus = _write_corpus(
        root, seed, size, by_group["celebrity"], names, portraits, events, skills_train
    )
    plans = _write_mllmu(root, seed, size, by_group, portraits)
    plans |= _write_holdout(root, seed, size, holdout, portraits)
    n_dev_rows = _write_mmbench(root, seed, size, skills_train)
    scenes = _write_pebench(root, seed, size, by_group["pebench"], portraits, events)

    counts = {
        "celebrities": size.celebrities,
        "fictitious": size.fictitious,
        "pebench_people": size.pebench_people,
        "holdout_fictitious": size.holdout_fictitious,
        "holdout_celebrities": size.holdout_celebrities,
        "events": size.events,
        "corpus_records": len(corpus),
        "mmbench_dev_rows": n_dev_rows,
        "pebench_images": len(scenes),
    }
    write_json(
        root / "world.json",
        {
            "format": WORLD_FORMAT_VERSION,
            "seed": seed,
            "size": size_name,
            "sizes": asdict(size),
            "counts": counts,
            "people": [p.to_json() for p in [*people, *holdout]],
            "events": events,
            "item_plans": {pid: asdict(plan) for pid, plan in plans.items()},
            "pebench_scenes": scenes,
            "renderings": {
                "train": list(range(size.train_renderings)),
                "held_out": list(range(size.train_renderings, size.renderings)),
            },
        },
    )
    return counts


def _portrait_rel(person_id: str, k: int) -> str:
    return f"images/people/{person_id}/{k}.png"


def _write_corpus(
    root: Path,
    seed: int,
    size: WorldSize,
    celebrities: list[Person],
    names: dict[str, str],
    portraits: dict[str, list[bytes]],
    events: list[dict],
    questions: list[SkillQuestion],
) -> list[dict]:
    rng = _rng(seed, "corpus")
    records: list[dict] = []
    for person in celebrities:
        # famous people are photographed at events more often
        scenes = []
        for k in range(person.fame // 5):
            event = rng.choice(events)
            img = decode_image(portraits[person.id][k % size.train_renderings])
            rel = f"images/scenes/{person.id}/{k}.png"
            _save_png(root, rel, draw_scene(event["style"], img, rng))
            scenes.append((rel, event["name"]))
        records += celebrity_records(
            rng,
            person,
            names,
            lambda k, pid=person.id: _portrait_rel(pid, k),
            size.train_renderings,
            scenes,
        )
    for k, q in enumerate(questions):
        _save_png(root, f"images/skills/{k}.png", q.image)
    records += skill_records(
        rng, questions, lambda k: f"images/skills/{k}.png", size.skill_mcq_orders
    )
    rng.shuffle(records)
    lines = []
    for k, rec in enumerate(records):
        lines.append(json.dumps({"id": f"r{k:06d}", **rec}, ensure_ascii=False, sort_keys=True))
    path = root / "corpus" / "pretrain.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return records


def _profile(
    person: Person,
    image: bytes,
    image_path: str,
    tasks: dict[str, list[dict]] | None,
    with_metadata: bool,
    extra: list[tuple[bytes, str]] | None = None,
) -> MLLMUProfile:
    bio = {"Name": person.name, **person.attributes}

    def mcqs(key: str) -> list[MCQ]:
        return [MCQ(q["Question"], q["Options"], q["Correct_Answer"]) for q in tasks[key]]

    def opens(key: str) -> list[OpenQuestion]:
        return [OpenQuestion(q["Question"], q["Ground_Truth"], q["Type"]) for q in tasks[key]]

    pairs = training_pairs(person)
    return MLLMUProfile(
        id=person.id,
        image=image,
        image_path=image_path,
        biography=bio,
        question=pairs[1]["Question"],
        answer=pairs[1]["Answer"],
        mcq_image=mcqs("Image_Textual_Questions") if tasks else [],
        mcq_text=mcqs("Pure_Text_Questions") if tasks else [],
        mask=opens("Mask_Task") if tasks else [],
        generation=opens("Generation_Task") if tasks else [],
        metadata=[(q["Question"], q["Answer"]) for q in pairs] if with_metadata else None,
        extra_images=extra or [],
    )


def _write_mllmu(
    root: Path,
    seed: int,
    size: WorldSize,
    by_group: dict[str, list[Person]],
    portraits: dict[str, list[bytes]],
) -> dict[str, ItemPlan]:
    """Fictitious people as Full_Set / ft_Data / Test_Set / forget_* / retain_*, celebrities
    as Retain_Set, the way MLLMU-Bench lays out its configs."""
    rng = _rng(seed, "questions")
    mllmu = root / "mllmu"
    plans: dict[str, ItemPlan] = {}
    full: dict[str, MLLMUProfile] = {}
    for group, config in (("fictitious", "Full_Set"), ("celebrity", "Retain_Set")):
        rows = []
        for p in by_group[group]:
            plans[p.id] = plan_items(rng, size.mcq_per_modality, size.cloze_per_modality)
            tasks = benchmark_tasks(rng, p, plans[p.id])
            rows.append(_profile(p, portraits[p.id][0], _portrait_rel(p.id, 0), tasks, True))
        write_mllmu(mllmu, config, rows)
        full.update({r.id: r for r in rows})

    fictitious = by_group["fictitious"]
    write_mllmu(
        mllmu,
        "ft_Data",
        [_profile(p, portraits[p.id][0], _portrait_rel(p.id, 0), None, True) for p in fictitious],
    )
    test_rows = []
    held_out = range(size.train_renderings, size.renderings)
    for p in fictitious:
        tasks = benchmark_tasks(rng, p, plans[p.id], paraphrase=True)
        extra = [(portraits[p.id][k], _portrait_rel(p.id, k)) for k in held_out]
        test_rows.append(_profile(p, extra[0][0], extra[0][1], tasks, False, extra))
    write_mllmu(mllmu, "Test_Set", test_rows)

    # nested forget sets (forget_5 within forget_10 ...), as in MLLMU-Bench
    order = [p.id for p in fictitious]
    _rng(seed, "splits").shuffle(order)
    for percent in size.forget_percents:
        n = max(1, round(len(order) * percent / 100))
        write_mllmu(mllmu, f"forget_{percent}", [full[i] for i in sorted(order[:n])])
        write_mllmu(mllmu, f"retain_{100 - percent}", [full[i] for i in sorted(order[n:])])
    return plans


def _write_holdout(
    root: Path,
    seed: int,
    size: WorldSize,
    holdout: list[Person],
    portraits: dict[str, list[bytes]],
) -> dict[str, ItemPlan]:
    """The holdout people as Holdout_Set (fictitious) and Holdout_Celebrities, laid out like
    Full_Set and Retain_Set: the same questions and training pairs (``metadata``), in no
    training config (ft_Data) and no corpus record."""
    rng = _rng(seed, "holdout-questions")
    plans: dict[str, ItemPlan] = {}
    for kind, config in (("fictitious", HOLDOUT_FICTITIOUS), ("celebrity", HOLDOUT_CELEBRITIES)):
        rows = []
        for p in (p for p in holdout if p.group == HOLDOUT_GROUPS[kind]):
            plans[p.id] = plan_items(rng, size.mcq_per_modality, size.cloze_per_modality)
            tasks = benchmark_tasks(rng, p, plans[p.id])
            rows.append(_profile(p, portraits[p.id][0], _portrait_rel(p.id, 0), tasks, True))
        if rows:
            write_mllmu(root / "mllmu", config, rows)
    return plans


def _write_mmbench(
    root: Path, seed: int, size: WorldSize, train_questions: list[SkillQuestion]
) -> int:
    def rows(questions, with_rotations: bool) -> list[MMBenchRow]:
        out = []
        for k, q in enumerate(questions):
            category, l2 = CATEGORIES[q.skill]
            row = MMBenchRow(
                index=k,
                question=q.question,
                hint=q.hint,
                options=q.options,
                answer=q.answer,
                category=category,
                l2_category=l2,
                image=encode_png(q.image),
                source="pulse-world",
                comment="",
                split="dev" if with_rotations else "train",
            )
            out += rotations(row) if with_rotations else [row]
        return out

    dev = rows(make_questions(_rng(seed, "skills-dev"), size.skills_dev, "eval"), True)
    write_mmbench(root / "mmbench" / "dev.tsv", dev)
    # the corpus's skills pictures, kept apart from dev
    train = rows(train_questions, False)
    write_mmbench(root / "mmbench" / "train.tsv", train)
    return len(dev)


def _write_pebench(
    root: Path,
    seed: int,
    size: WorldSize,
    people: list[Person],
    portraits: dict[str, list[bytes]],
    events: list[dict],
) -> list[dict]:
    """Each PEBench person at ``events_per_person`` events, photographed twice: a ``seen``
    image (fine-tuning, efficacy) and an ``unseen`` one (generality)."""
    rng = _rng(seed, "pebench")
    rows: list[PEBenchRow] = []
    scenes: list[dict] = []
    n_events = min(size.events_per_person, len(events))
    for p in people:
        for event in sorted(rng.sample(events, n_events), key=lambda e: e["id"]):
            for split, variant in (("seen", 0), ("unseen", size.train_renderings)):
                portrait = decode_image(portraits[p.id][variant])
                rel = f"images/{p.id}/{event['id']}_{split}.png"
                image = encode_png(draw_scene(event["style"], portrait, rng))
                shown = rng.sample(event["keywords"], 4)
                description = (
                    f"{p.name} at the {event['name']}. The scene shows "
                    f"{', '.join(shown[:3])} and {shown[3]}."
                )
                rows.append(
                    PEBenchRow(
                        person=p.name,
                        event=event["name"],
                        image_path=rel,
                        image=image,
                        keywords=list(event["keywords"]),
                        split=split,
                        description=description,
                    )
                )
                scenes.append(
                    {
                        "person_id": p.id,
                        "event_id": event["id"],
                        "split": split,
                        "image": f"pebench/{rel}",
                    }
                )
    write_pebench(root / "pebench", rows)
    return scenes
