"""Study configuration: defaults from configs/default.yaml, an experiment file of differences, `--set` overrides.

Everything is checked when it is loaded. A problem raises one `UserError` whose message names where the bad value
came from (the file or ``--set``), the dotted key, the value and what is allowed, e.g.
``experiments/x.yaml: search.dropout.max must be less than 1, got 1.5``.
"""

from rnncompare.config.loading import (
    config_digest,
    default_config_path,
    expand_sweep,
    load_config,
    parse_overrides,
    read_yaml_mapping,
    suite_label,
)
from rnncompare.config.schema import DEFAULT_TRACKING_URI, TASK_NAMES, TUNER_ALGORITHMS, StudyConfig, TaskConfig

__all__ = [
    "DEFAULT_TRACKING_URI",
    "TASK_NAMES",
    "TUNER_ALGORITHMS",
    "StudyConfig",
    "TaskConfig",
    "config_digest",
    "default_config_path",
    "expand_sweep",
    "load_config",
    "parse_overrides",
    "read_yaml_mapping",
    "suite_label",
]
