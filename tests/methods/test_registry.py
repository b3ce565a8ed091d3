"""The registry: names, typed documented defaults, `--set key=value` parsing, one-line errors."""

from __future__ import annotations

import pytest

from pulse.assignments import parse_assignments
from pulse.errors import ConfigError
from pulse.methods import format_methods, get_method, list_methods, method_names

METHODS = {
    "ga", "ga_kl", "gd", "kl_min", "npo", "simnpo", "idk", "idk_dpo", "rmu", "mmunlearner",
    "siu", "viker", "manu",
}  # fmt: skip


def test_every_method_is_listed_with_formula_and_documented_defaults():
    infos = {info.name: info for info in list_methods()}
    assert set(infos) == set(method_names()) == METHODS
    for info in infos.values():
        # the formula is in the docstring (a training-free method's: its neuron score)
        assert "L =" in info.doc or (info.name == "manu" and "S_m(j) =" in info.doc), info.name
        assert all(p.doc for p in info.params), info.name
    npo = {p.name: p for p in infos["npo"].params}
    assert npo["beta"].default == 0.1 and npo["beta"].type == "a number"
    assert npo["retain"].default == "none" and npo["retain"].type == "none | nll | kl"
    listing = format_methods()
    assert "npo" in listing and "beta=0.1" in listing and "kl_weight=1.0" in listing


def test_overrides_are_parsed_by_type():
    npo = get_method("npo", ["beta=0.4", "retain=kl", "retain_weight=2"])
    assert npo.params.beta == 0.4 and npo.params.retain == "kl" and npo.params.retain_weight == 2.0
    assert npo.uses == {"forget", "retain"} and npo.cached == {"forget"}
    assert get_method("npo").uses == {"forget"}  # no retain term, no retain batches
    rmu = get_method("rmu", {"layer": "3"})
    assert rmu.params.layer == 3 and isinstance(rmu.params.layer, int)
    assert get_method("mmunlearner").requires == {"forget", "retain"}
    assert get_method("idk").uses == {"idk", "retain"} and get_method("idk").requires == {"retain"}
    # constructed rows are made from forget rows: the request provides forget (and retain)
    assert get_method("siu").uses == {"siu", "retain"}
    assert get_method("siu").requires == {"forget", "retain"}
    viker = get_method("viker", {"images": 2, "retain": "none"})
    assert viker.uses == {"forget", "irrelevant0", "irrelevant1"} and viker.requires == {"forget"}
    assert viker.cached == {"forget"} and not get_method("viker", {"forget": "ga"}).cached
    assert get_method("manu").edits and not get_method("npo").edits


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("nope", [], "unknown unlearning method 'nope'; expected one of ga, ga_kl"),
        ("npo", ["bta=0.2"], "method 'npo': unknown parameter 'bta' (its parameters: beta,"),
        ("npo", ["beta=abc"], "method 'npo', parameter 'beta': expected a number, got 'abc'"),
        ("npo", ["retain=mse"], "parameter 'retain': expected one of none, nll, kl, got 'mse'"),
        ("rmu", ["layer=2.5"], "parameter 'layer': expected an integer, got 2.5"),
        ("rmu", ["layer=-1"], "parameter 'layer': expected an integer >= 0, got -1"),
        ("npo", ["beta=-1"], "parameter 'beta': expected a number > 0, got -1"),
        ("npo", {"beta": 0}, "parameter 'beta': expected a number > 0, got 0"),  # a config's
        ("ga", ["beta"], "--set 'beta': expected key=value"),
        ("ga", ["beta=1"], "method 'ga': unknown parameter 'beta' (its parameters: none)"),
    ],
)
def test_bad_settings_are_one_line_config_errors(name, overrides, message):
    with pytest.raises(ConfigError) as err:
        get_method(name, overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_assignments_are_parsed_as_yaml_values():
    # The one --set parser: the run config's overrides and the method hyper-parameters.
    assert parse_assignments(["a=1", " b = x=y ", "c=1e-4", "d=true", "e=[1, 2]"]) == {
        "a": 1,
        "b": "x=y",
        "c": "1e-4",  # YAML 1.1 wants a dot; the model the key belongs to reads the number
        "d": True,
        "e": [1, 2],
    }
    assert get_method("npo", ["beta=1e-4"]).params.beta == 1e-4
