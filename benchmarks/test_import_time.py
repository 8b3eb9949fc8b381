"""Import time of the worker package, against ``import numpy`` measured in the same run.

Every round starts one fresh interpreter per statement, interleaved so that a disturbance from
another process falls on all of them alike, and times it from start to exit. The target, with
PASS/MISS printed at the end of the session: the median of
``import juniper_cascor_protocol.worker`` at most 15 ms above the median of ``import numpy``
(the one dependency, which no package built on it can import faster).

Each interpreter runs isolated (``-I``) with a private bytecode cache, written by a first,
untimed round: an installed environment has its bytecode cached, and without one both
statements would mostly time the compiler. Machines are noisy, so a MISS is reported, not
failed; every timed interpreter must succeed.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

STATEMENTS = {
    "numpy": "import numpy",
    "worker": "import juniper_cascor_protocol.worker",
    "top level": "import juniper_cascor_protocol",
}
ROUNDS = 21
TARGET_SECONDS = 15e-3


@dataclass
class ImportReport:
    """Collects the medians; pytest calls ``pytest_terminal_summary`` at the very end."""

    medians: dict[str, float] = field(default_factory=dict)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.medians:
            return
        numpy = self.medians["numpy"]
        terminalreporter.write_line("")
        terminalreporter.write_line(
            f"Import time, fresh interpreters, median of {ROUNDS} interleaved rounds:"
        )
        for name, statement in STATEMENTS.items():
            took = self.medians[name]
            extra = "" if name == "numpy" else f"  ({(took - numpy) * 1e3:+.1f} ms)"
            terminalreporter.write_line(f"  {statement:<40} {took * 1e3:7.1f} ms{extra}")
        worker = self.medians["worker"] - numpy
        verdict = "PASS" if worker <= TARGET_SECONDS else "MISS"
        terminalreporter.write_line("Targets:")
        terminalreporter.write_line(
            f"  import juniper_cascor_protocol.worker <= import numpy + "
            f"{TARGET_SECONDS * 1e3:.0f} ms: {worker * 1e3:+.1f} ms {verdict}"
        )


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def test_import_time(pytestconfig: pytest.Config, tmp_path: Path) -> None:
    commands = {
        name: [sys.executable, "-I", "-X", f"pycache_prefix={tmp_path}", "-c", statement]
        for name, statement in STATEMENTS.items()
    }
    for command in commands.values():  # writes the bytecode cache; also checks each works
        subprocess.run(command, check=True)
    if pytestconfig.getoption("benchmark_disable", default=False):
        return
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(ROUNDS):
        for name, command in commands.items():
            times[name].append(_seconds(command))
    report = ImportReport({name: statistics.median(runs) for name, runs in times.items()})
    pytestconfig.pluginmanager.register(report, "import-time-report")
