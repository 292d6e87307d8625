"""Records how many examples of each input class every entry point was given.

With ``MINIFW_FUZZ_RECORD=path.json`` set, the counts kept by :func:`fuzz.harness.record` are
written there at the end of the session, with the hypothesis profile in use and the known gaps
(tests marked ``xfail``, with their reasons); ``tools/fuzz_table.py`` renders them as
``docs/fuzz.md``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import hypothesis
from hypothesis import settings

from .harness import CLASSES, COUNTS

RECORD_ENV = "MINIFW_FUZZ_RECORD"
_OUTCOMES: dict[str, list[dict[str, str]]] = {"xfailed": [], "xpassed": [], "failed": []}


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call" and not (report.when == "setup" and report.failed):
        return
    if hasattr(report, "wasxfail"):
        kind = "xpassed" if report.passed else "xfailed"
        _OUTCOMES[kind].append({"test": report.nodeid, "reason": report.wasxfail})
    elif report.failed:
        _OUTCOMES["failed"].append({"test": report.nodeid, "reason": ""})


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    data = {
        "profile": os.environ.get("HYPOTHESIS_PROFILE", "ci"),
        "hypothesis": hypothesis.__version__,
        "max_examples": settings().max_examples,
        "derandomize": settings().derandomize,
        "exitstatus": int(exitstatus),
        "tests": session.testscollected,
        "classes": CLASSES,
        "counts": [
            {"entry": entry, "class": cls, "examples": n}
            for (entry, cls), n in sorted(COUNTS.items())
        ],
        **{k: sorted(v, key=lambda r: r["test"]) for k, v in _OUTCOMES.items()},
    }
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
