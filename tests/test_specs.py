"""Notebook parameters as the user meant them: booleans and mappings that papermill's -p passes as text."""
import pytest

from aigfd_lite import ProfileError, parse_bool, parse_mapping


@pytest.mark.parametrize("text, meant", [("True", True), ("true", True), ("YES", True), ("on", True), ("1", True),
                                         (" false ", False), ("No", False), ("off", False), ("0", False),
                                         (True, True), (False, False), (1, True), (0, False)])
def test_booleans_given_as_text_are_read_strictly(text, meant):
    assert parse_bool("start_training", text) is meant


@pytest.mark.parametrize("value", ["ture", "", "2", 2, 0.0, None, "True!"])
def test_anything_else_is_refused_naming_the_parameter(value):
    with pytest.raises(ProfileError, match=r"parameter 'start_training' = .*allowed is True or False"):
        parse_bool("start_training", value)


def test_mappings_from_json_yaml_or_python():
    assert parse_mapping("blades", '{"text_tower": "learned"}') == {"text_tower": "learned"}
    assert parse_mapping("blades", "text_tower: learned") == {"text_tower": "learned"}
    assert parse_mapping("settings", '{"lr": 1e-4}') == {"lr": 1e-4}  # JSON first: 1e-4 stays a number
    assert parse_mapping("settings", {"epochs": 1}) == {"epochs": 1}
    assert parse_mapping("settings", None) == parse_mapping("settings", "") == parse_mapping("settings", "  ") == {}


def test_a_long_run_guard_reads_start_training_strictly():
    from aigfd_lite import resolve
    from aigfd_lite.long_runs import confirm_training

    with pytest.raises(ProfileError, match=r"parameter 'start_training' = 'ture'"):
        confirm_training(resolve("lite"), start="ture")
