from pathlib import Path

import pytest

from melancia.config import ConfigError, load_config, to_dict
from melancia.data.config import DataConfig
from melancia.evaluation.config import EvalConfig
from melancia.router.config import RouterConfig
from melancia.run import RunConfig
from melancia.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
CONFIG_TYPES = {"data": DataConfig, "eval": EvalConfig, "run": RunConfig, "train": TrainConfig,
                "router": RouterConfig}


def test_every_config_file_loads():
    files = sorted((REPO / "configs").rglob("*.yaml"))
    assert files, "configs/ is empty"
    for path in files:
        kind = path.relative_to(REPO / "configs").parts[0].removesuffix(".yaml")
        assert kind in CONFIG_TYPES, f"{path}: no loader for configs/{kind}/ (add it to CONFIG_TYPES)"
        load_config(CONFIG_TYPES[kind], path)


def test_overrides_are_typed_and_nested(tmp_path):
    cfg = load_config(RunConfig, None, ["data.seed=7", "data.valid_fraction=0.2", "data.qa_paths=[a, b]"])
    assert cfg.data.seed == 7 and cfg.data.valid_fraction == 0.2 and cfg.data.qa_paths == [Path("a"), Path("b")]


def test_unknown_field_names_file_line_and_suggestion(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\nvalid_fractoin: 0.2\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: unknown field 'valid_fractoin' \(did you mean 'valid_fraction'\?\)"):
        load_config(DataConfig, path)


def test_wrong_type_names_field_and_expectation(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  seed: cinco\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: field 'data.seed' expected an integer, got 'cinco'"):
        load_config(RunConfig, path)


def test_out_of_range_value_is_refused_with_location(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("valid_fraction: 0.9\n")
    with pytest.raises(ConfigError, match=r"c.yaml:1: valid_fraction: expected a number in \[0, 0.5\)"):
        load_config(DataConfig, path)


@pytest.mark.parametrize("text, message", [("a: [1,\n", "invalid YAML"), ("- 1\n- 2\n", "expected a mapping")])
def test_malformed_yaml(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(DataConfig, path)


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(DataConfig, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(DataConfig, None, ["seed"])


def test_to_dict_is_plain():
    assert to_dict(DataConfig())["corpus_dir"] == "data/corpus"


def test_an_override_that_is_not_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match=r"override 'qa_paths=\[a\?b\]': the value is not valid YAML"):
        load_config(DataConfig, overrides=["qa_paths=[a?b]"])


def test_a_config_error_carries_the_dotted_field_it_is_about(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  seed: 3\n  valid_fraction: 0.9\n")
    with pytest.raises(ConfigError, match=r"c.yaml:3: data.valid_fraction: expected a number in \[0, 0.5\)") as raised:
        load_config(RunConfig, path)
    assert raised.value.field == "data.valid_fraction"


def test_a_check_across_fields_points_at_the_field_it_names(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stages: []\n")
    with pytest.raises(ConfigError, match=r"c.yaml:1: stages: expected at least one of data") as raised:
        load_config(RunConfig, path)
    assert raised.value.field == "stages"
