"""`rnncompare.compat`: each module refuses, when imported, a library outside the range its patches were written
for, with one line naming the package and the version; the study stops before anything is written."""

import re

import pytest

from rnncompare.compat import deepsig, jax, keras, keras_tuner, mlflow
from rnncompare.compat.versions import IncompatibleVersion, check_range, installed_version
from rnncompare.core.errors import UserError

from conftest import clean_env, rnncompare


@pytest.mark.parametrize("module", [keras, keras_tuner, mlflow, jax, deepsig], ids=lambda module: module.__name__)
def test_the_installed_libraries_are_in_the_ranges_the_patches_were_written_for(module):
    distribution = {"keras_tuner": "keras-tuner"}.get(
        module.__name__.rpartition(".")[2], module.__name__.rpartition(".")[2]
    )
    assert module.VERSION == installed_version(distribution)


def test_a_version_outside_the_range_is_one_line_naming_the_package_and_both_versions():
    with pytest.raises(IncompatibleVersion) as caught:
        check_range("keras-tuner", "1.5.0", "==1.4.8", "keras_tuner")
    assert str(caught.value) == (
        "keras-tuner 1.5.0 is installed, but rnncompare.compat.keras_tuner patches its private API as it is in "
        "keras-tuner==1.4.8: pip install 'keras-tuner==1.4.8'"
    )
    assert isinstance(caught.value, UserError)  # the CLI prints it as one line, exit 2
    check_range("keras", "3.15.1", ">=3.15,<3.16", "keras")
    with pytest.raises(IncompatibleVersion, match=r"^mlflow is not installed; rnncompare needs mlflow>=3\.17,<3\.18"):
        check_range("mlflow", None, ">=3.17,<3.18", "mlflow")


def test_a_study_with_another_keras_tuner_stops_with_one_line_and_writes_nothing(tmp_path):
    # a distribution's metadata found ahead of site-packages is the one importlib.metadata reports
    fake = tmp_path / "site" / "keras_tuner-1.5.0.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: keras-tuner\nVersion: 1.5.0\n")
    (tmp_path / "s.yaml").write_text("study: s\ntuner: {max_trials: 1, epochs: 1}\nevaluation: {seeds: 0}\n")
    completed = rnncompare("run", "s.yaml", cwd=tmp_path, env=clean_env(PYTHONPATH=str(tmp_path / "site")))
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "error: keras-tuner 1.5.0 is installed, but rnncompare.compat.keras_tuner patches its private API as it "
        "is in keras-tuner==1.4.8: pip install 'keras-tuner==1.4.8'"
    ]
    assert not (tmp_path / "mlruns").exists()
    assert re.search(r"1\.4\.8", keras_tuner.SUPPORTED)
