"""The report: `summary` (the numbers, as plain data), `figures` (one function per figure), `render` (the files).

Built only from what the tracking store holds (see `tracking.load_study`), never from memory: `rnncompare run`
and `rnncompare report` both read the study back and call `write_report`, so the two produce the same
`summary.json` by construction.
"""

from rnncompare.report.comparison import build_comparison
from rnncompare.report.render import REPORT_FILES, WrittenReport, write_comparison, write_report
from rnncompare.report.summary import build_summary, trials_table
from rnncompare.report.verdict import architecture_run_numbers, headline, run_notes, study_run_numbers, verdict

__all__ = [
    "REPORT_FILES",
    "WrittenReport",
    "architecture_run_numbers",
    "build_comparison",
    "build_summary",
    "headline",
    "run_notes",
    "study_run_numbers",
    "trials_table",
    "verdict",
    "write_comparison",
    "write_report",
]
