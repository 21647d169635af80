"""mkdocs hook: the configuration and CLI reference pages, generated from `configs/default.yaml`'s comments and
from the `rnncompare` command's own argument parser, so the docs cannot drift from them."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_MARKER = "<!-- rnncompare:config-reference -->"
CLI_MARKER = "<!-- rnncompare:cli-reference -->"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[a-z_]+):(?P<value>[^#]*?)\s*(#\s?(?P<comment>.*))?$")
COMMENT_LINE = re.compile(r"^ +# ?(?P<comment>.*)$")


def config_rows(text: str) -> list[tuple[str, str, str]]:
    """(dotted key, default, meaning) for every key of a commented YAML file, comments continued on the lines
    below a key joined to it; a section's own line has an empty default."""
    rows: list[list[str]] = []
    parents: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = KEY_LINE.match(line)
        if match:
            indent = len(match["indent"])
            parents = [(level, name) for level, name in parents if level < indent]
            dotted = ".".join([name for _, name in parents] + [match["key"]])
            value = match["value"].strip()
            rows.append([dotted, value, (match["comment"] or "").strip()])
            if not value:
                parents.append((indent, match["key"]))
            continue
        continuation = COMMENT_LINE.match(line)
        if continuation and rows and line.index("#") > 20:
            rows[-1][2] += " " + continuation["comment"].strip()
    return [tuple(row) for row in rows]


def _cell(text: str) -> str:
    """Text for a Markdown table cell: no raw HTML, no column breaks."""
    return html.escape(text, quote=False).replace("|", "&#124;")


def config_reference() -> str:
    """The configuration reference as Markdown tables: the top-level keys, then one table per section."""
    rows = config_rows((REPO / "configs" / "default.yaml").read_text())
    header = ["| key | default | meaning |", "|---|---|---|"]
    top = [row for row in rows if "." not in row[0] and row[1]]
    lines = ["## Top-level keys", "", *header]
    lines += [f"| `{key}` | `{_cell(value)}` | {_cell(meaning)} |" for key, value, meaning in top]
    for key, value, meaning in rows:
        if row_is_section := not value:
            if "." not in key:
                lines += ["", f"## `{key}`", "", _cell(meaning), "", *header]
            else:
                lines.append(f"| `{key}` | | {_cell(meaning)} |")
        elif "." in key and not row_is_section:
            lines.append(f"| `{key}` | `{_cell(value)}` | {_cell(meaning)} |")
    return "\n".join(lines)


def cli_reference() -> str:
    """Every command's `--help`, as the command prints it."""
    os.environ["COLUMNS"] = "110"  # argparse wraps to the terminal; a fixed width keeps the page stable
    from rnncompare.cli import build_parser

    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command").choices
    sections = ["## `rnncompare`", "", "```text", parser.format_help().rstrip(), "```"]
    for name, command in commands.items():
        sections += ["", f"## `rnncompare {name}`", "", "```text", command.format_help().rstrip(), "```"]
    return "\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_reference())
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown
