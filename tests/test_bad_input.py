"""Bad input to every command, as a hostile user gives it: each case is one line on stderr
naming the file / row / field or option, exit code 2, no traceback, and nothing written that
looks finished. The CLI runs in-process (one torch import for the whole suite); a subprocess
case in tests/test_cli.py checks the real exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pulse.cli import main


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(*args)`` -> (exit code, stderr) of ``pulse ARGS``; its stdout in ``cli.out``."""

    def run(*args: str | Path) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["pulse", *map(str, args)])
        with pytest.raises(SystemExit) as exit_:
            main()
        captured = capsys.readouterr()
        run.out = captured.out
        return exit_.value.code, captured.err

    return run


def refused(code: int, err: str, *needles: str) -> None:
    """One line, exit 2, no traceback, every needle in the line."""
    # Progress bars (a model's weights loading) are not lines of the message.
    lines = [line for line in err.splitlines() if line.strip() and "it/s]" not in line]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


# --- numbers the CLI and configs accept but cannot use ---------------------------------------

UNLEARN_NUMBERS = [
    (["--lr", "-1"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "nan"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "inf"], "--epochs"),
    (["--max-steps", "0"], "--max-steps"),
    (["--loss-bound", "-1"], "--loss-bound"),
    (["--loss-bound", "nan"], "--loss-bound"),
    (["--grad-accum", "0"], "--grad-accum"),
    (["--rank", "0"], "--rank"),
    (["--checkpoint-every", "soon"], "--checkpoint-every"),
    (["--checkpoint-every", "0 steps"], "--checkpoint-every"),
    (["--checkpoint-every", "-5 min"], "--checkpoint-every"),
]


@pytest.mark.parametrize(("options", "named"), UNLEARN_NUMBERS, ids=lambda v: " ".join(v))
def test_unlearn_refuses_unusable_numbers_before_creating_anything(cli, tmp_path, options, named):
    out = tmp_path / "out"
    code, err = cli(
        "unlearn",
        *("--model", tmp_path / "model", "--data", tmp_path / "data", "--forget", "a,b"),
        *("--method", "ga", "--out", out),
        *options,
    )
    refused(code, err, named)
    assert not out.exists()


FINETUNE_NUMBERS = [
    (["--lr", "0"], "--lr: expected a finite number above 0, got 0.0"),
    (["--lr", "-1"], "--lr: expected a finite number above 0, got -1.0"),  # ascent
    (["--lr", "inf"], "--lr: expected a finite number above 0, got inf"),
    (["--max-steps", "0"], "--max-steps: expected -1 (train by epochs) or at least 1, got 0"),
    (["--epochs", "nan"], "--epochs: expected a finite number above 0, got nan"),
    (["--batch-size", "0"], "--batch-size: expected at least 1, got 0"),
    (["--grad-accum", "0"], "--grad-accum: expected at least 1, got 0"),
]


@pytest.mark.parametrize(("options", "named"), FINETUNE_NUMBERS, ids=lambda v: " ".join(v))
def test_finetune_refuses_unusable_numbers_naming_the_option(cli, tmp_path, options, named):
    out = tmp_path / "out"
    code, err = cli(
        "finetune", "--model", tmp_path / "model", "--data", tmp_path / "data", "--out", out,
        *options,
    )  # fmt: skip
    refused(code, err, named)
    assert not out.exists()


WORLD_AND_EVAL_NUMBERS = [
    (["world", "train", "--pretrain-epochs", "-1"], "--pretrain-epochs: expected a finite", "-1.0"),
    (["world", "train", "--finetune-epochs", "inf"], "--finetune-epochs: expected a fin", "inf"),
    (["eval", "--model", "m", "--data", "d", "--batch-size", "0"], "--batch-size: ", "0"),
]


@pytest.mark.parametrize(
    ("args", "named", "value"), WORLD_AND_EVAL_NUMBERS, ids=[c[1] for c in WORLD_AND_EVAL_NUMBERS]
)
def test_world_train_and_eval_name_the_option_and_value(cli, tmp_path, args, named, value):
    if args[0] == "world":
        args = [*args, "--world", str(tmp_path / "w"), "--out", str(tmp_path / "o")]
    code, err = cli(*args)
    refused(code, err, named, f"got {value}")
    assert not (tmp_path / "o").exists()


RUN_NUMBERS = [
    ("train.lr=.inf", "train.lr"),
    ("train.lr=-1", "train.lr"),
    ("train.epochs=.nan", "train.epochs"),
    ("train.max_steps=0", "train.max_steps"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.loss_bound=-1", "train.loss_bound"),
    ("models.dtype=float64", "models.dtype"),
    ("methods=[{method: ga, lr: .inf}]", "methods.0.lr"),
    ("methods=[{method: ga, max_steps: 0}]", "methods.0.max_steps"),
    ("scenarios.finetuned.train.lr=.nan", "scenarios.finetuned.train.lr"),
    ("eval.batch_size=0", "eval.batch_size"),
    ("train.checkpoint_every=2.5 steps", "train.checkpoint_every"),
    ("train.checkpoint_every=0 min", "train.checkpoint_every"),
]


@pytest.mark.parametrize(("override", "named"), RUN_NUMBERS, ids=[c[0] for c in RUN_NUMBERS])
def test_run_refuses_unusable_numbers_before_creating_anything(cli, tmp_path, override, named):
    """The same rules in the YAML and on the command line: each value once as --set, once
    written in the config file."""
    key, value = override.split("=", 1)
    out = tmp_path / "run"
    code, err = cli("run", "--out", out, "--set", override, _config(tmp_path, ""))
    refused(code, err, f"error: --set {key}: ", named)  # the command line, not the file
    parts = key.split(".")
    text = "".join(f"{'  ' * depth}{part}:\n" for depth, part in enumerate(parts[:-1]))
    config = _config(tmp_path, f"{text}{'  ' * (len(parts) - 1)}{parts[-1]}: {value}\n")
    code, err = cli("run", "--out", out, config)
    refused(code, err, str(config), named)
    assert not out.exists()


def test_more_sequential_requests_than_forget_people_is_refused_before_the_run(cli, tmp_path):
    out = tmp_path / "run"
    config = _config(
        tmp_path, "scenarios:\n  finetuned: {people: 4}\n  sequential: {requests: 3}\n"
    )
    code, err = cli("run", "--out", out, config)
    refused(code, err, str(config), "scenarios.sequential.requests: 3 asked for", "has 2 people")
    assert not out.exists()


def test_more_sequential_requests_than_the_world_has_forget_people_is_refused_at_parse(
    cli, tmp_path
):
    """No finetuned.people: the count comes from the world's size, before anything is built."""
    out = tmp_path / "run"
    config = _config(
        tmp_path, "models:\n  world: {size: small}\nscenarios:\n  sequential: {requests: 999}\n"
    )
    code, err = cli("run", "--out", out, config)
    refused(code, err, str(config), "scenarios.sequential.requests: 999 asked for", "small world")
    assert not out.exists()


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ("finetuned: {people: 1000}", "scenarios.finetuned.people: 1000 asked for, Full_Set has"),
        ("pebench: {persons: 50}", "scenarios.pebench: 50 person targets asked for"),
    ],
)
def test_what_the_world_cannot_give_is_refused_before_its_models_train(
    cli, tmp_path, section, said
):
    home = tmp_path / "home"
    config = _config(
        tmp_path, f"models:\n  world: {{size: small, dir: {home}}}\nscenarios:\n  {section}\n"
    )
    code, err = cli("run", "--out", tmp_path / "run", config)
    refused(code, err, said)
    assert (home / "world" / "world.json").is_file() and not (home / "models").exists()
    # no run directory left to refuse the corrected config as another run's
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fixed_by", ["data", "forget-file"])
def test_more_sequential_requests_than_local_forget_people_is_refused_before_the_run(
    cli, small_world, tiny_models, tmp_path, fixed_by
):
    """Local data and no finetuned.people: the count comes from the data (the fictitious
    config's people, or the forget file given), checked before the run directory exists."""
    from pulse.data.mllmu import read_mllmu

    ids = sorted(p.id for p in read_mllmu(small_world / "mllmu", "Full_Set"))
    (tmp_path / "forget.txt").write_text("\n".join(ids[:2]) + "\n", encoding="utf-8")
    (tmp_path / "retain.txt").write_text("\n".join(ids[2:]) + "\n", encoding="utf-8")
    split = (
        f"{{forget: {tmp_path / 'forget.txt'}, retain: {tmp_path / 'retain.txt'}}}"
        if fixed_by == "forget-file"
        else "{}"
    )
    requests = 3 if fixed_by == "forget-file" else len(ids)
    config = _config(
        tmp_path,
        f"models: {{finetuned: {tiny_models / 'finetuned'}}}\n"
        f"data: {{mllmu: {small_world / 'mllmu'}}}\n"
        "eval: {general: false}\n"
        "scenarios:\n"
        "  pretrained: {enabled: false}\n"
        "  scope: {enabled: false}\n"
        "  pebench: {enabled: false}\n"
        f"  finetuned: {split}\n"
        f"  sequential: {{requests: {requests}}}\n",
    )
    out = tmp_path / "run"
    code, err = cli("run", "--out", out, config)
    said = "lists 2" if fixed_by == "forget-file" else "in Full_Set x forget_fraction"
    refused(code, err, f"scenarios.sequential.requests: {requests} asked for", said)
    assert not out.exists()


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- text that is not UTF-8 ---------------------------------------------------------------------

LATIN1 = "train:\n  lr: 0.001  # r\xe9glage\n".encode("latin-1")


def test_a_config_that_is_not_utf8_is_named(cli, tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_bytes(LATIN1)
    out = tmp_path / "run"
    refused(*cli("run", "--out", out, config), str(config), "not UTF-8", "byte 0xe9 on line 2")
    assert not out.exists()


@pytest.mark.parametrize("option", ["--forget", "--retain"])
def test_an_id_list_that_is_not_utf8_is_named(cli, tmp_path, option):
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"fict_001\nfict_\xe9\n")
    out = tmp_path / "out"
    other = "fict_009" if option == "--retain" else "fict_010"
    forget = other if option == "--retain" else str(ids)
    retain = ["--retain", str(ids)] if option == "--retain" else []
    code, err = cli(
        "unlearn",
        *("--model", tmp_path, "--data", tmp_path, "--forget", forget, *retain),
        *("--method", "ga_kl", "--out", out),
    )
    refused(code, err, str(ids), "not UTF-8")
    assert not out.exists()


@pytest.mark.parametrize(("format_", "name"), [("mmbench", "dev.tsv"), ("pebench", "PEBench.csv")])
def test_a_table_that_is_not_utf8_names_the_file_and_line(
    cli, small_world, tmp_path, format_, name
):
    """A latin-1 byte on the third line of a TSV / CSV: the file and that line (row 3, the
    header being row 1) in validation and in the reader evaluation uses."""
    import shutil

    from pulse.data.mmbench import read_mmbench
    from pulse.data.pebench import read_pebench
    from pulse.errors import DataError

    source = small_world / format_ / name
    copy = tmp_path / format_
    shutil.copytree(source.parent, copy)
    path = copy / name
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"e", b"\xe9", 1)
    path.write_bytes(b"\n".join(lines))
    code, err = cli("data", "validate", format_, path)
    refused(code, err, f"{path}, row 3: not UTF-8 text (byte 0xe9)")
    with pytest.raises(DataError) as exc:
        (read_mmbench if format_ == "mmbench" else read_pebench)(path)
    assert err.strip() == f"error: {exc.value}"


def _run_dir(tmp_path: Path) -> Path:
    from pulse.protocol.config import parse_config
    from pulse.protocol.results import ResultRow
    from pulse.protocol.store import RunStore

    store = RunStore.open(tmp_path / "run", parse_config({"seed": 1}))
    rows = [
        ResultRow("finetuned", "finetuned", m, "", 1, 1, s, "all", "accuracy", 0.5, n=4)
        for m in ("before", "ga")
        for s in ("forget", "retain")
    ]
    store.run_stage("finetuned/before", lambda: rows[:2])
    store.run_stage("finetuned/ga", lambda: rows[2:])
    return store.root


@pytest.mark.parametrize(
    ("file", "damage", "named"),
    [
        ("config.yaml", lambda p: p.write_bytes(b"seed: \xff\n"), "config.yaml: not UTF-8"),
        ("results.jsonl", lambda p: p.write_bytes(p.read_bytes() + b"\xff\n"), "results.jsonl"),
        ("manifest.json", lambda p: p.write_bytes(p.read_bytes()[:50]), "manifest.json"),
        (
            "stages/finetuned__ga.jsonl",
            lambda p: p.write_bytes(p.read_bytes()[:-30]),
            "stages/finetuned__ga.jsonl: cut in the middle of row 2",
        ),
    ],
    ids=["config-latin1", "results-latin1", "manifest-truncated", "stage-cut"],
)
def test_report_on_a_damaged_run_directory_names_the_file(cli, tmp_path, file, damage, named):
    root = _run_dir(tmp_path)
    damage(root / file)
    code, err = cli("report", root)
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert any(named in line for line in warnings), err
    assert named.split(":")[0] in (root / "report.md").read_text(encoding="utf-8")


# --- images that decode badly or are too big ---------------------------------------------------


def _png(size=(8, 8)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _rechunk(data: bytes, kind: bytes, edit) -> bytes:
    """``data`` with the first chunk ``kind``'s payload edited and its CRC made valid again."""
    import struct
    import zlib

    at = data.index(kind) - 4
    length = struct.unpack(">I", data[at : at + 4])[0]
    payload = edit(data[at + 8 : at + 8 + length])
    chunk = struct.pack(">I", len(payload)) + kind + payload
    chunk += struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    return data[:at] + chunk + data[at + 12 + length :]


def bomb() -> bytes:
    """A few hundred bytes whose header claims 30000 x 30000 pixels."""
    import struct

    return _rechunk(_png(), b"IHDR", lambda p: struct.pack(">II", 30000, 30000) + p[8:])


def _claim(width: int, height: int):
    import struct

    return lambda p: struct.pack(">II", width, height) + p[8:]


def broken_stream() -> bytes:
    """Sound chunks (CRCs valid) around a pixel stream that does not inflate."""
    return _rechunk(_png((64, 64)), b"IDAT", lambda p: p[:2] + bytes(len(p) - 2))


BAD_IMAGES = {
    "bomb": (bomb, "pixels allowed"),
    "too-big": (lambda: _rechunk(_png(), b"IHDR", _claim(12000, 9000)), "12000x9000 pixels"),
    "broken-stream": (broken_stream, "do not decode as an image"),
    "truncated": (lambda: _png((64, 64))[:60], "do not decode as an image"),
    "not-an-image": (lambda: b"GIF89a but not really", "do not decode as an image"),
}


def _mmbench_with(world: Path, tmp_path: Path, image: bytes) -> Path:
    import base64

    lines = (world / "mmbench" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    cells = lines[1].split("\t")
    cells[header.index("image")] = base64.b64encode(image).decode("ascii")
    path = tmp_path / "dev.tsv"
    path.write_text("\n".join([lines[0], "\t".join(cells), *lines[2:]]) + "\n", encoding="utf-8")
    return path


def _mllmu_with(world: Path, tmp_path: Path, image: bytes) -> Path:
    import shutil

    import pyarrow.parquet as pq

    root = tmp_path / "data"
    shutil.copytree(world / "mllmu", root / "mllmu")
    for part in sorted((root / "mllmu" / "Full_Set").glob("*.parquet"))[:1]:
        table = pq.read_table(part).to_pylist()
        table[0]["image"] = {"bytes": image, "path": "x.png"}
        import pyarrow as pa

        pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(part)), part)
    return root


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=str)
def test_a_bad_mmbench_image_is_one_line_in_validate_and_eval(
    cli, small_world, tiny_models, tmp_path, bad
):
    make, said = BAD_IMAGES[bad]
    tsv = _mmbench_with(small_world, tmp_path, make())
    code, err = cli("data", "validate", "mmbench", tsv)
    refused(code, err, f"{tsv}, row 2, field 'image'", said)
    out = tmp_path / "eval.json"
    eval_args = ("--model", tiny_models / "finetuned", "--tasks", "mmbench", "--out", out)
    code, again = cli("eval", "--data", tsv, *eval_args)
    assert again == err and code == 2 and not out.exists()


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=str)
def test_a_bad_mllmu_image_is_one_line_in_validate_and_eval(
    cli, small_world, tiny_models, tmp_path, bad
):
    make, said = BAD_IMAGES[bad]
    root = _mllmu_with(small_world, tmp_path, make())
    code, err = cli("data", "validate", "mllmu", root / "mllmu")
    refused(code, err, "Full_Set", "row 1, field 'image'", said)
    out = tmp_path / "eval.json"
    eval_args = ("--model", tiny_models / "finetuned", "--split", "Full_Set", "--out", out)
    code, again = cli("eval", "--data", root, *eval_args)
    assert again == err and code == 2 and not out.exists()


def _pebench_copy(world: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the world's PEBench and the first image its CSV names."""
    import csv
    import shutil

    root = shutil.copytree(world / "pebench", tmp_path / "pebench")
    with open(root / "PEBench.csv", encoding="utf-8", newline="") as handle:
        first = next(csv.DictReader(handle))["image"]
    return root / "PEBench.csv", root / first


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=str)
def test_a_bad_pebench_image_is_one_line_in_validate_and_the_reader(
    cli, small_world, tmp_path, bad
):
    from pulse.data.pebench import read_pebench
    from pulse.errors import DataError

    make, said = BAD_IMAGES[bad]
    csv_path, image = _pebench_copy(small_world, tmp_path)
    image.write_bytes(make())
    code, err = cli("data", "validate", "pebench", csv_path)
    refused(code, err, f"{csv_path}, row 2, field 'image'", said)
    with pytest.raises(DataError) as exc:
        read_pebench(csv_path)
    assert err.strip() == f"error: {exc.value}"


def test_a_symlink_loop_in_the_pebench_images_is_one_line(cli, small_world, tmp_path):
    csv_path, image = _pebench_copy(small_world, tmp_path)
    image.unlink()
    image.symlink_to(image)
    refused(*cli("data", "validate", "pebench", csv_path), f"{csv_path}, row 2, field 'image'")
    folder = image.parent
    moved = folder.with_name(folder.name + "-real")
    folder.rename(moved)
    folder.symlink_to(folder)
    refused(*cli("data", "validate", "pebench", csv_path), f"{csv_path}, row 2, field 'image'")


# --- data the validator accepted and evaluation refused ----------------------------------------


def _mmbench_edited(world: Path, tmp_path: Path, line: int, column: str, value: str) -> Path:
    lines = (world / "mmbench" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    cells = lines[line - 1].split("\t")
    cells[header.index(column)] = value
    lines[line - 1] = "\t".join(cells)
    path = tmp_path / "dev.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("category", "ocr", "row 3, field 'category': 'ocr' differs from 'object_recognition'"),
        ("l2-category", "x", "row 3, field 'l2-category': 'x' differs"),
        ("index", "\u00b2", "row 3, field 'index': expected a non-negative integer"),
        ("index", "\u0661", "row 3, field 'index': expected a non-negative integer"),
        ("image", "\u00b2", "row 3, field 'image': expected base64 image data"),
    ],
    ids=["rotation-category", "rotation-l2", "superscript-index", "arabic-index", "image-ref"],
)
def test_mmbench_rows_evaluation_would_refuse_are_refused_by_validation(
    cli, small_world, tiny_models, tmp_path, column, value, named
):
    tsv = _mmbench_edited(small_world, tmp_path, 3, column, value)
    code, err = cli("data", "validate", "mmbench", tsv)
    refused(code, err, f"{tsv}, {named}")
    eval_args = ("--model", tiny_models / "finetuned", "--tasks", "mmbench")
    assert cli("eval", "--data", tsv, *eval_args) == (code, err)


# --- adapters ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter(tiny_models, tmp_path_factory) -> Path:
    """A LoRA adapter (rank 4, LLM) saved for the tiny fine-tuned model."""
    from pulse.models.adapters import apply_scope, save_adapter
    from pulse.models.loading import load_model
    from pulse.models.scope import UpdateScope

    model = load_model(tiny_models / "finetuned", dtype="float32")
    peft = apply_scope(model, UpdateScope(rank=4, alpha=8))
    return save_adapter(peft, tmp_path_factory.mktemp("adapter") / "adapter")


def _edit_config(edit):
    import json

    def apply(folder: Path) -> None:
        path = folder / "adapter_config.json"
        path.write_text(json.dumps(edit(json.loads(path.read_text()))), encoding="utf-8")

    return apply


def _reshape(folder: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    path = folder / "adapter_model.safetensors"
    tensors = load_file(path)
    name = next(iter(sorted(tensors)))
    tensors[name] = torch.zeros(tensors[name].shape[0] + 3, tensors[name].shape[1])
    save_file(tensors, path)


BAD_ADAPTERS = {
    "config-truncated": (
        lambda f: (f / "adapter_config.json").write_text('{"peft_type": "LO', encoding="utf-8"),
        "adapter_config.json is not valid JSON",
    ),
    "config-not-utf8": (
        lambda f: (f / "adapter_config.json").write_bytes(b'{"peft_type": "\xff"}'),
        "adapter_config.json is not UTF-8",
    ),
    "config-no-peft-type": (_edit_config(lambda c: {"r": 4}), "no 'peft_type'"),
    "config-bad-value": (
        _edit_config(lambda c: {**c, "peft_type": "NOT_A_TUNER"}),
        "not a valid PEFT config (unknown value 'NOT_A_TUNER')",
    ),
    "missing-modules": (
        _edit_config(lambda c: {**c, "target_modules": ["no_such_proj"]}),
        "does not fit this model",
    ),
    "wrong-shape": (_reshape, "size mismatch"),
    "weights-garbage": (
        lambda f: (f / "adapter_model.safetensors").write_bytes(b"\x00" * 64),
        "does not fit this model",
    ),
}


@pytest.mark.parametrize("bad", BAD_ADAPTERS, ids=str)
def test_a_bad_adapter_is_one_line_naming_it(cli, small_world, tiny_models, adapter, tmp_path, bad):
    import shutil

    damage, said = BAD_ADAPTERS[bad]
    folder = shutil.copytree(adapter, tmp_path / "adapter")
    damage(folder)
    out = tmp_path / "eval.json"
    code, err = cli(
        "eval",
        *("--model", tiny_models / "finetuned", "--data", small_world),
        *("--split", "forget_5", "--adapter", folder, "--out", out),
    )
    refused(code, err, f"error: {folder}: ", said)
    assert not out.exists()


# --- offline for real --------------------------------------------------------------------------

NO_NETWORK = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network refused by the test")
socket.getaddrinfo = refuse
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
from pulse.cli import main
import huggingface_hub.constants
assert huggingface_hub.constants.HF_HUB_OFFLINE, "HF_HUB_OFFLINE set after huggingface_hub"
sys.argv = ["pulse", *sys.argv[1:]]
try:
    main()
finally:
    print("NETWORK ATTEMPTS:", len(attempts), attempts[:3], file=sys.stderr)
"""


def test_an_evaluation_attempts_no_network_call(small_world, tiny_models, tmp_path):
    """HF_HUB_OFFLINE is in effect (set before huggingface_hub is imported) and no socket is
    opened or name resolved while a model loads and is evaluated."""
    import os
    import subprocess

    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_NETWORK,
            *("eval", "--model", str(tiny_models / "finetuned"), "--data", str(small_world)),
            *("--split", "forget_5", "--tasks", "mcq", "--out", str(tmp_path / "e.json")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "NETWORK ATTEMPTS: 0 []" in result.stderr, result.stderr[-2000:]
    assert (tmp_path / "e.json").is_file()


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("question", "Which? " * 2000, "row 2, field 'question': 14000 characters, more than"),
        ("hint", "x" * 9000, "row 2, field 'hint': 9000 characters"),
        ("B", "y" * 8001, "row 2, field 'B': 8001 characters"),
        ("question", "<image> What is shown?", "row 2, field 'question': contains the image"),
    ],
    ids=["long-question", "long-hint", "long-option", "placeholder"],
)
def test_mmbench_text_one_item_cannot_carry_is_refused(
    cli, small_world, tiny_models, tmp_path, column, value, named
):
    tsv = _mmbench_edited(small_world, tmp_path, 2, column, value)
    code, err = cli("data", "validate", "mmbench", tsv)
    refused(code, err, f"{tsv}, {named}")
    eval_args = ("--model", tiny_models / "finetuned", "--tasks", "mmbench")
    assert cli("eval", "--data", tsv, *eval_args) == (code, err)


def test_mmbench_options_all_the_same_are_refused(cli, small_world, tmp_path):
    lines = (small_world / "mmbench" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    cells = lines[1].split("\t")
    for letter in "ABCD":
        if cells[header.index(letter)].strip():
            cells[header.index(letter)] = "same"
    lines[1] = "\t".join(cells)
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused(*cli("data", "validate", "mmbench", tsv), "row 2, field 'A': all options are the same")


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda q: {**q, "Question": "Q " * 5000}, "Question': 10000 characters"),
        (lambda q: {**q, "Question": "Who is <image>?"}, "Question': contains the image"),
        (lambda q: {**q, "Options": {k: "same" for k in q["Options"]}}, "all options are the same"),
        (lambda q: {**q, "Options": {**q["Options"], "C": "z" * 8001}}, "Options.C': 8001"),
    ],
    ids=["long-question", "placeholder", "same-options", "long-option"],
)
def test_mllmu_text_one_item_cannot_carry_is_refused(cli, small_world, tmp_path, edit, named):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "data"
    shutil.copytree(small_world / "mllmu", root / "mllmu")
    part = sorted((root / "mllmu" / "Full_Set").glob("*.parquet"))[0]
    table = pq.read_table(part).to_pylist()
    mcqs = table[0]["Classification_Task"]["Image_Textual_Questions"]
    mcqs[0] = edit(mcqs[0])
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(part)), part)
    code, err = cli("data", "validate", "mllmu", root / "mllmu")
    refused(code, err, "Full_Set", "row 1", "Image_Textual_Questions[0]", named)


@pytest.mark.parametrize("scorer", ["option_text", "letter", "generate"])
def test_an_item_longer_than_the_model_context_is_refused_naming_it(
    cli, small_world, tiny_models, tmp_path, scorer
):
    """Under the 8,000 characters a field may hold but past the tiny model's 512-token
    context: refused before any forward, naming the item (not truncated, not a crash)."""
    tsv = _mmbench_edited(small_world, tmp_path, 2, "question", "Which one? " * 300)
    index = tsv.read_text(encoding="utf-8").splitlines()[1].split("\t")[0]
    model = ("--model", tiny_models / "finetuned", "--tasks", "mmbench", "--scorer", scorer)
    code, err = cli("eval", "--data", tsv, *model)
    refused(code, err, "item ", index, "more than the model's context of 512")


# --- text with square brackets is printed as it is, never read as rich markup ------------------


def test_a_path_with_square_brackets_is_printed_as_given(cli, tmp_path):
    missing = tmp_path / "br[red]" / "x.yaml"
    code, err = cli("run", missing)
    refused(code, err, f"{missing}: config file not found")


def test_a_swept_label_in_an_error_keeps_its_brackets(cli, tmp_path):
    twice = "{method: npo, label: 'npo[lr=0.0001]'}"
    methods = f"methods=[{twice}, {twice}]"
    code, err = cli("run", "--out", tmp_path / "run", "--set", methods, _config(tmp_path, ""))
    refused(code, err, "method label 'npo[lr=0.0001]' is used twice")


def test_the_terminal_table_prints_swept_labels_with_their_brackets(cli, tmp_path):
    from pulse.protocol.results import ResultRow, write_results

    run = tmp_path / "run"
    label = "ga[lr=0.0001]"
    rows = [
        ResultRow("finetuned", "finetuned", label, "", 1, 1, split, modality, "accuracy", 0.5, 10)
        for split in ("forget", "retain")
        for modality in ("multimodal", "text")
    ]
    write_results(run / "results.jsonl", rows)
    code, err = cli("report", run)
    assert code == 0, err
    assert f"│  {label} " in cli.out, cli.out


def test_help_prints_square_brackets(cli):
    code, _ = cli("leaderboard", "--help")
    assert code == 0
    assert "--set methods=[npo,siu]" in cli.out


def test_a_refused_unlearn_leaves_no_out_folder(cli, small_world, tiny_models, adapter, tmp_path):
    """Refused on the model, or on an adapter that does not fit it (found once the model has
    loaded): the --out folder is never made."""
    import shutil

    out = tmp_path / "out"
    request = ("--data", small_world / "mllmu", "--forget", "forget_5", "--method", "ga")
    code, err = cli("unlearn", "--model", tmp_path / "nonexistent", *request, "--out", out)
    refused(code, err, str(tmp_path / "nonexistent"))
    assert not out.exists()
    folder = shutil.copytree(adapter, tmp_path / "adapter")
    _reshape(folder)
    model = ("--model", tiny_models / "finetuned", "--adapter", folder)
    code, err = cli("unlearn", *model, *request, "--out", out)
    refused(code, err, str(folder), "size mismatch")
    assert not out.exists()


# --- leaderboard configs read as run configs are ------------------------------------------------


def test_a_leaderboard_run_file_that_is_not_yaml_is_one_line(cli, tmp_path):
    bad = _config(tmp_path, "train:\n  lr: [1e-4\n")
    out = tmp_path / "board"
    code, err = cli("leaderboard", "--out", out, "--set", f"run={bad}")
    refused(code, err, f"run: {bad}: line 3: not valid YAML")
    assert not out.exists()
    code, err = cli("leaderboard", "--out", out, bad)
    refused(code, err, f"{bad}: line 3: not valid YAML")


def test_a_leaderboard_config_error_reads_as_a_run_configs(cli, tmp_path):
    code, err = cli("leaderboard", "--out", tmp_path / "board", "--set", "foo=1")
    refused(code, err, "--set foo: unknown key")
    code, err = cli("leaderboard", "--out", tmp_path / "board", "--set", "lr_factors=[1, 1]")
    refused(code, err, "lr_factors: ", "got [1, 1]")


def test_a_pebench_split_evaluation_cannot_group_is_refused_by_validation(cli, tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    csv = tmp_path / "PEBench.csv"
    csv.write_text(
        "person,event,image,keywords,split\nAna,fair,a.png,a;b,Unseen\nAna,fair,a.png,a;b,sometimes\n"
    )
    code, err = cli("data", "validate", "pebench", csv)
    refused(code, err, f"{csv}, row 3, field 'split'", "'seen'", "'holdout'", "got 'sometimes'")


# --- pulse unlearn's data: what was expected ----------------------------------------------------


def test_unlearn_on_a_world_root_or_a_mistyped_config_says_what_was_expected(
    cli, small_world, tmp_path
):
    out = tmp_path / "out"
    request = ("--model", tmp_path / "model", "--method", "ga", "--out", out)
    elsewhere = small_world / "mmbench"
    for forget in ("forget_5", "a,b"):  # a config name, an ID list: the data holds no configs
        code, err = cli("unlearn", "--data", elsewhere, "--forget", forget, *request)
        refused(code, err, f"{elsewhere}: no MLLMU-Bench configs here (folders of parquet files)")
    # a world directory is read as its mllmu/ (as pulse eval reads it): on to the model
    code, err = cli("unlearn", "--data", small_world, "--forget", "forget_5", *request)
    refused(code, err, f"{tmp_path / 'model'}: model directory not found")
    mllmu = small_world / "mllmu"
    code, err = cli("unlearn", "--data", mllmu, "--forget", "forget_99", *request)
    refused(code, err, f"{mllmu}: no config 'forget_99' here; configs found: ", "forget_5")
    assert not out.exists()


def test_unlearn_says_no_loss_bound_as_the_run_config_does(cli, small_world, tmp_path):
    request = ("--data", small_world, "--forget", "forget_5", "--method", "ga")
    request += ("--model", tmp_path / "model", "--out", tmp_path / "out")
    code, err = cli("unlearn", *request, "--loss-bound", "abc")
    refused(code, err, "--loss-bound: Input should be a valid number", "'abc'")
    code, err = cli("unlearn", *request, "--loss-bound", "null")  # accepted: on to the model
    refused(code, err, f"{tmp_path / 'model'}: model directory not found")
