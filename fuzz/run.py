"""Run every fuzz target for a time budget; report executions and coverage; keep findings.

``python -m fuzz.run [--seconds N] [--parallel P] [--seed S] [target ...]`` (``uv run nox -s
fuzz -- ...`` passes its arguments here). Each target runs as its own libFuzzer process over
its committed seeds (``fuzz/seeds/<target>``) and its working corpus (``fuzz/corpus/<target>``,
grown across runs, not committed), with the protocol dictionary. Per target it prints the
executions and libFuzzer's coverage counters (``cov``: instrumented edges reached, ``ft``:
features) once the seeds are loaded and at the end. Any contract violation, uncaught exception,
timeout (an input taking over ``--timeout`` seconds) or memory blow-up (``--rss-limit-mb``)
fails the run: the reproducer is in ``fuzz/findings/`` and, for an exception, a minimized copy
beside it (``.min``), the full log in ``fuzz/logs/<date-time>/<target>.log``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

FUZZ = Path(__file__).parent
ROOT = FUZZ.parent
TARGETS = (
    "binary_frame",
    "envelope",
    "control_request",
    "worker_message",
    "reassembler",
    "training_session",
    "control_client_session",
    "control_server_session",
    "worker_session",
    "server_session",
)
_STATUS = re.compile(r"^#(\d+)\s+(INITED|DONE)\s+cov: (\d+) ft: (\d+) corp: (\d+)/", re.MULTILINE)
_EXECUTED = re.compile(r"^stat::number_of_executed_units: (\d+)", re.MULTILINE)


@dataclass
class Outcome:
    target: str
    returncode: int
    seconds: float
    log: Path
    executions: int = 0
    seeds_cov: str = "?"
    final_cov: str = "?"
    corpus: str = "?"
    findings: list[Path] = field(default_factory=list)


def _command(target: str, args: argparse.Namespace, seconds: int) -> list[str]:
    corpus = FUZZ / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        f"fuzz.targets.{target}",
        f"-max_total_time={seconds}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-dict={FUZZ / 'protocol.dict'}",
        f"-artifact_prefix={FUZZ / 'findings' / target}-",
        "-print_final_stats=1",
        str(corpus),
        str(FUZZ / "seeds" / target),
    ]
    if args.seed is not None:
        command.insert(3, f"-seed={args.seed}")
    return command


def _summarize(outcome: Outcome, before: set[Path]) -> Outcome:
    text = outcome.log.read_text(errors="replace")
    for number, status, cov, ft, corpus in _STATUS.findall(text):
        if status == "INITED":
            outcome.seeds_cov = f"cov {cov} ft {ft}"
        else:
            outcome.final_cov, outcome.corpus = f"cov {cov} ft {ft}", corpus
            outcome.executions = int(number)
    executed = _EXECUTED.findall(text)
    if executed:
        outcome.executions = int(executed[-1])
    found = set((FUZZ / "findings").glob(f"{outcome.target}-*")) - before
    outcome.findings = sorted(path for path in found if not path.name.endswith(".min"))
    return outcome


def _minimize(outcome: Outcome) -> None:
    for artifact in outcome.findings:
        if artifact.name.startswith(f"{outcome.target}-crash-"):
            subprocess.run(
                [sys.executable, "-m", f"fuzz.targets.{outcome.target}", "--minimize", artifact],
                cwd=ROOT,
                check=False,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", choices=[*TARGETS, []], default=[])
    parser.add_argument("--seconds", type=int, default=15, help="fuzzing time per target")
    parser.add_argument("--parallel", type=int, default=1, help="targets run at once")
    parser.add_argument("--seed", type=int, default=None, help="libFuzzer's random seed")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="after a finding, fuzz the target again for the rest of its time (long runs)",
    )
    args = parser.parse_args()
    targets = args.targets or list(TARGETS)
    (FUZZ / "findings").mkdir(exist_ok=True)
    logs = FUZZ / "logs" / time.strftime("%Y%m%d-%H%M%S")  # one folder per run: runs may overlap
    logs.mkdir(parents=True, exist_ok=True)
    before = set((FUZZ / "findings").iterdir())
    waiting = list(targets)
    running: list[tuple[str, subprocess.Popen[bytes], float, Path]] = []
    outcomes: list[Outcome] = []
    budgets: dict[str, int] = {}
    while waiting or running:
        while waiting and len(running) < args.parallel:
            target = waiting.pop(0)
            attempt = sum(outcome.target == target for outcome in outcomes)
            log = logs / f"{target}{f'.{attempt}' if attempt else ''}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    _command(target, args, budgets.get(target, args.seconds)),
                    cwd=ROOT,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            running.append((target, process, time.monotonic(), log))
        time.sleep(0.2)
        for entry in list(running):
            target, process, started, log = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            outcome = Outcome(target, process.returncode, time.monotonic() - started, log)
            outcomes.append(_summarize(outcome, before))
            before.update(outcome.findings)  # a restarted target reports only its own
            left = args.seconds - sum(o.seconds for o in outcomes if o.target == target)
            if args.keep_going and process.returncode != 0 and left >= 5:
                waiting.insert(0, target)  # a finding stopped it: the rest of its time goes on
                budgets[target] = int(left)
            print(
                f"{target:24} {outcome.executions:>10} execs  start: {outcome.seeds_cov:16} "
                f"end: {outcome.final_cov:16} corpus {outcome.corpus:>5}  "
                f"{'ok' if process.returncode == 0 else 'FAILED'} ({outcome.seconds:.0f} s)",
                flush=True,
            )
    failed = [outcome for outcome in outcomes if outcome.returncode != 0 or outcome.findings]
    for outcome in failed:
        print(f"\n{outcome.target}: exit {outcome.returncode}, log {outcome.log}")
        print("\n".join(_failure_excerpt(outcome.log)))
        for artifact in outcome.findings:
            print(f"reproducer: {artifact}")
        _minimize(outcome)
    total = sum(outcome.executions for outcome in outcomes)
    print(f"\n{len(outcomes)} targets, {total} executions, {len(failed)} failed")
    return 1 if failed else 0


def _failure_excerpt(log: Path) -> list[str]:
    """The lines of the log that say what went wrong (atheris's traceback, libFuzzer's error)."""
    lines = log.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if "Uncaught Python exception" in line or "ERROR: libFuzzer" in line:
            return lines[index : index + 40]
    return lines[-20:]


if __name__ == "__main__":
    sys.exit(main())
