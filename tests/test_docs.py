"""The front door and the docs: a short README that leads with the two commands, a versioned changelog whose
newest version is the package's, and reference pages generated from the source that miss nothing."""

import importlib.util
import re
import subprocess
import tomllib

import pytest
import yaml

from rnncompare.cli import build_parser

from conftest import REPO, SCRIPTS

MAX_README_LINES = 250


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short_and_leads_with_the_two_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= MAX_README_LINES
    first_block = lines[lines.index("```bash") + 1 : lines.index("```")]
    assert [line.split()[:2] for line in first_block] == [["make", "run"], ["make", "test"]]
    assert lines.index("```bash") < 5  # before anything else is said


def test_the_changelog_is_versioned_and_its_newest_version_is_the_packages():
    import rnncompare

    changelog = (REPO / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", changelog, flags=re.M)
    assert [version for version, _ in versions][-2:] == ["0.2.0", "0.1.0"]
    assert [date for _, date in versions] == sorted((date for _, date in versions), reverse=True)
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert versions[0][0] == pinned == rnncompare.__version__


def test_the_configuration_reference_names_every_key_of_the_defaults_with_its_comment():
    text = (REPO / "configs" / "default.yaml").read_text()
    rows = {key: (value, meaning) for key, value, meaning in _hooks().config_rows(text)}

    def check(mapping, prefix=""):
        for key, value in mapping.items():
            dotted = f"{prefix}{key}"
            assert dotted in rows, dotted
            assert rows[dotted][1], f"{dotted} has no comment in configs/default.yaml"
            if rows[dotted][0] == "":  # a section: its keys have rows of their own
                check(value, f"{dotted}.")
            else:  # a value, inline mappings included, as the file writes it
                assert yaml.safe_load(rows[dotted][0]) == value, dotted

    check(yaml.safe_load(text))
    # a comment continued on the next line belongs to its key
    assert rows["sweep"][1].endswith("then one comparison report over them all")
    assert "| `search.units` | `{min: 16, max: 128, step: 16}` |" in _hooks().config_reference()


def test_the_cli_reference_shows_every_command():
    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    reference = _hooks().cli_reference()
    for name in commands:
        assert f"## `rnncompare {name}`" in reference
    assert "--admin-password-file" in reference and "--verbose" in reference


@pytest.mark.slow
def test_a_built_wheel_runs_tasks_and_validate_from_a_fresh_environment(tmp_path):
    import sys

    import rnncompare

    completed = subprocess.run(
        ["bash", str(SCRIPTS / "wheel_check.sh"), sys.executable], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (
        completed.stdout.strip().splitlines()[-1]
        == f"wheel check passed: rnncompare-{rnncompare.__version__}-py3-none-any.whl"
    )
