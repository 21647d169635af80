"""Loading a study's config: configs/default.yaml, then the experiment file, then --set overrides, merged with
where each key came from remembered, and checked as a whole; one-line errors with a did-you-mean."""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rnncompare.config.schema import SET_ORIGIN, TASKS, StudyConfig, TaskConfig, show_value
from rnncompare.core.errors import UserError


def default_config_path() -> Path:
    """configs/default.yaml: in the source tree, or the copy packaged into a built wheel."""
    in_tree = Path(__file__).resolve().parents[3] / "configs" / "default.yaml"
    return in_tree if in_tree.is_file() else Path(str(resources.files("rnncompare") / "default.yaml"))


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; any problem is a one-line `UserError`."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise UserError(f"{path}: not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError(f"{path}: must hold a mapping of config keys, got {type(data).__name__}")
    return data


def parse_overrides(overrides: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn ``["tuner.epochs=3", ...]`` (values read as YAML) or a ``{dotted: value}`` mapping into a nested dict."""
    nested: dict[str, Any] = {}
    if not overrides:
        return nested
    if isinstance(overrides, Mapping):
        pairs = list(overrides.items())
    else:
        pairs = []
        for item in overrides:
            key, sep, raw = str(item).partition("=")
            if not sep or not key.strip():
                raise UserError(f"{SET_ORIGIN} expects dotted.key=value, got {item!r}")
            try:
                value = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError:
                value = raw
            pairs.append((key.strip(), value))
    for dotted, value in pairs:
        parts = str(dotted).split(".")
        if parts[0] == "sweep" and len(parts) > 1:
            # A sweep's keys are themselves dotted keys: --set sweep.task.length=[10,20] varies task.length.
            parts = ["sweep", ".".join(parts[1:])]
        if any(not part for part in parts):
            raise UserError(f"{SET_ORIGIN}: {dotted!r} is not a dotted key such as tuner.epochs")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"{SET_ORIGIN}: {dotted} conflicts with another override of {part}")
        node[parts[-1]] = value
    return nested


def load_config(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
) -> StudyConfig:
    """Resolve a study's config: defaults, then the experiment (a YAML path or a dict), then overrides.

    Raises `UserError` with one line naming the origin, the dotted key, the bad value and what is allowed.
    """
    defaults_path = default_config_path()
    layers: list[tuple[str, dict[str, Any]]] = [(str(defaults_path), read_yaml_mapping(defaults_path))]
    if isinstance(source, Mapping):
        layers.append(("the study dict", copy.deepcopy(dict(source))))
    elif source is not None:
        layers.append((str(source), read_yaml_mapping(Path(source))))
    layers.append((SET_ORIGIN, parse_overrides(overrides)))

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for origin, layer in layers:
        _merge_into(merged, layer, origin, origins, prefix="")
    if merged.get("suite") is not None:
        given = [key for key, origin in origins.items() if key.split(".")[0] == "task" and origin != str(defaults_path)]
        if given:
            raise UserError(
                f"{origins[given[0]]}: suite and {given[0]} together: a suite names its tasks itself; put the task "
                "in the suite, or drop the suite"
            )
    try:
        config = StudyConfig.model_validate(merged)
    except ValidationError as exc:
        raise UserError(_describe(exc.errors()[0], origins)) from None
    _check_task_options(config.task, origins)
    return config


def expand_sweep(
    source: str | Path | Mapping[str, Any] | None, overrides: Sequence[str] | Mapping[str, Any] | None = None
) -> tuple[StudyConfig, list[tuple[dict[str, Any], StudyConfig]]]:
    """The study as configured, and one (swept values, config) per combination of its `sweep` values.

    A study without a sweep expands to itself. Each swept study is named ``<study>-<key leaf><value>``; every one
    is checked here, so a bad value stops the sweep before its first study trains.
    """
    base = load_config(source, overrides)
    if base.suite is not None:
        return base, _expand_suite(base, source, overrides)
    if not base.sweep:
        return base, [({}, base)]
    keys = list(base.sweep)
    expanded = []
    for values in itertools.product(*(base.sweep[key] for key in keys)):
        swept = dict(zip(keys, values))
        suffix = "-".join(f"{key.rsplit('.', 1)[-1]}{value}" for key, value in swept.items())
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{base.study}-{suffix}")[:100]
        extra = {**swept, "study": name}
        try:
            config = load_config(source, [*_as_list(overrides), *(f"{k}={_yaml_scalar(v)}" for k, v in extra.items())])
        except UserError as exc:
            detail = str(exc).removeprefix(f"{SET_ORIGIN}: ")
            shown = ", ".join(f"{key}={value}" for key, value in swept.items())
            raise UserError(f"sweep {shown}: {detail}") from None
        # Each swept study stands alone: its logged config.yaml reruns exactly that study.
        expanded.append((swept, config.model_copy(update={"sweep": {}})))
    return base, expanded


def suite_label(entry: Mapping[str, Any]) -> str:
    """A suite task's name in study names and reports: the task's name, then each option it sets (a path by its
    file's name alone: `path: /some/dir/langid.csv` reads `pathlangid.csv`)."""
    options = "-".join(f"{key}{_label_value(value)}" for key, value in entry.items() if key != "name")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{entry['name']}-{options}" if options else entry["name"])


def _label_value(value: Any) -> Any:
    return PurePath(value).name if isinstance(value, str) and ("/" in value or "\\" in value) else value


def _expand_suite(
    base: StudyConfig, source: str | Path | Mapping[str, Any] | None, overrides
) -> list[tuple[dict[str, Any], StudyConfig]]:
    """One (its task's label as `{"suite": label}`, config) per task of a suite; each checked here."""
    expanded = []
    for index, entry in enumerate(base.suite):
        label = suite_label(entry)
        extra = {"task": entry, "suite": None, "study": f"{base.study}-{label}"[:100]}
        try:
            config = load_config(source, [*_as_list(overrides), *(f"{k}={_yaml_scalar(v)}" for k, v in extra.items())])
        except UserError as exc:
            detail = str(exc).removeprefix(f"{SET_ORIGIN}: ")
            raise UserError(f"suite entry {index + 1} ({label}): {detail}") from None
        expanded.append(({"suite": label}, config))
    return expanded


def _as_list(overrides: Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    if isinstance(overrides, Mapping):
        return [f"{key}={_yaml_scalar(value)}" for key, value in overrides.items()]
    return list(overrides or [])


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()


def _check_task_options(task: TaskConfig, origins: Mapping[str, str]) -> None:
    # Options are null unless set; one set for a task that does not read it would be silently ignored.
    allowed = TASKS[task.name].options
    for option in [name for name in TaskConfig.model_fields if name in _ALL_TASK_OPTIONS]:
        value = getattr(task, option)
        origin = origins.get(f"task.{option}", SET_ORIGIN)
        if value is not None and option not in allowed:
            users = [name for name, info in TASKS.items() if option in info.options]
            takes = f"{task.name} takes {', '.join(allowed)}" if allowed else f"{task.name} takes no options"
            raise UserError(
                f"{origin}: task.{option} does not apply to task {task.name} ({takes}; "
                f"{option} is for {', '.join(users)}), got {show_value(value)}"
            )
    for option in TASKS[task.name].required:
        if getattr(task, option) is None:
            origin = origins.get("task.name", SET_ORIGIN)
            raise UserError(f"{origin}: task {task.name} needs task.{option}")


_ALL_TASK_OPTIONS = sorted({option for info in TASKS.values() for option in info.options})


def _merge_into(target: dict, layer: dict, origin: str, origins: dict[str, str], prefix: str) -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        # a sweep is one value, not a section: a later layer replaces it whole (`--set sweep={}` runs one study)
        if isinstance(value, dict) and isinstance(target.get(key), dict) and dotted != "sweep":
            _merge_into(target[key], value, origin, origins, prefix=f"{dotted}.")
        else:
            # Lists and scalars replace what was there: an experiment's `architectures` is the whole list.
            target[key] = copy.deepcopy(value)
            for stale in [k for k in origins if k.startswith(f"{dotted}.")]:
                del origins[stale]
            if isinstance(value, dict):
                for leaf in _dotted_leaves(value, f"{dotted}."):
                    origins[leaf] = origin
        origins[dotted] = origin


def _dotted_leaves(mapping: dict, prefix: str) -> list[str]:
    keys = []
    for key, value in mapping.items():
        keys += [f"{prefix}{key}", *(_dotted_leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [])]
    return keys


def _dotted(loc: Sequence[Any]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).removeprefix(".")


def _describe(error: Mapping[str, Any], origins: Mapping[str, str]) -> str:
    loc = [part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
    key = _dotted(loc)
    origin_key = _dotted([p for p in loc if not isinstance(p, int)])
    origin = origins.get(origin_key) or next(
        (origins[k] for k in reversed(list(origins)) if k.startswith(f"{origin_key}.")), SET_ORIGIN
    )
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, _, leaf = origin_key.rpartition(".")
        allowed = _allowed_keys(parent)
        hint = difflib.get_close_matches(leaf, allowed, n=1)
        suggestion = f" (did you mean {parent + '.' if parent else ''}{hint[0]}?)" if hint else ""
        return f"{origin}: unknown key {key}{suggestion}; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{origin}: {key} is missing"
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        # A section-level check (min <= max) reads "search.units: min (200) ..."; a field-level one "study must ...".
        separator = ": " if isinstance(error.get("input"), dict) and not message.startswith("must ") else " "
        if not key:
            # A whole-config check names its key first ("evaluation.reference must ..."): credit that key's origin.
            origin = origins.get(message.split(" ", 1)[0], origin)
            return f"{origin}: {message}"
        return f"{origin}: {key}{separator}{message}"
    if kind == "too_short":
        return f"{origin}: {key} must list at least {error['ctx']['min_length']} item(s), got {show_value(error.get('input'))}"
    message = re.sub(r"^(Input|String|List|Value) should( be| have)?", lambda m: "must" + (m.group(2) or ""), message)
    message = message.replace("a valid dictionary or instance of", "a mapping of keys for")
    message = "must be a mapping of keys" if kind == "model_type" else message
    return f"{origin}: {key} {message}, got {show_value(error.get('input'))}"


def _allowed_keys(parent: str) -> list[str]:
    model: type[BaseModel] = StudyConfig
    for part in [p for p in parent.split(".") if p]:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def config_digest(config: StudyConfig) -> str:
    """A hash of the resolved config, without where and how this machine runs it (tracking.uri, tuner.dir,
    report.dir, execution): an interrupted study run is resumed, and a chief's study joined by a worker, only with
    the same config."""
    resolved = {key: value for key, value in config.to_dict().items() if key not in ("tracking", "execution")}
    resolved["tuner"] = {key: value for key, value in resolved["tuner"].items() if key != "dir"}
    resolved["report"] = {key: value for key, value in resolved["report"].items() if key != "dir"}
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]
