"""Run by tests/test_backend.py in a process of its own (see the test that names tests/scripts/text_task.py)."""

import sys

from rnncompare.orchestration.preflight import check_config_and_data

config, task = check_config_and_data(
    {
        "study": "reviews",
        "architectures": ["lstm"],
        "task": {"name": "text_csv", "path": sys.argv[1], "embedding_dim": 4},
    }
)
import keras

print(task.input_spec.vocabulary, keras.config.backend(), "tensorflow" in sys.modules)
