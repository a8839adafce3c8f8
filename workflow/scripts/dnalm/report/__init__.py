"""The self-contained HTML report: `write_report` builds it from the report manifest (see `dnalm.report.page`)."""

from dnalm.report.page import write_report

__all__ = ["write_report"]
