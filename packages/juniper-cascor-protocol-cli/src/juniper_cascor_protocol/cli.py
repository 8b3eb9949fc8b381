"""The ``juniper-cascor-protocol`` command-line tool.

Exit codes (the same for every command):
  0  success: the run was clean, the capture or frame is valid, the schemas are in sync
  1  problems found: invalid frames or seq problems, a malformed tensor frame, schema drift,
     or a demo run that reported problems
  2  usage error or unreadable input (argparse's own code for bad arguments)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

_EPILOG = """\
exit codes:
  0  success (clean run, valid input, schemas in sync)
  1  problems found (invalid frames, seq problems, malformed tensor, schema drift)
  2  usage error or unreadable input
"""


class _Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total_bytes: int | None, stream: IO[str]) -> None:
        self._total = total_bytes
        self._stream = stream
        self._done = 0
        self._last_draw = 0.0

    def advance(self, n_bytes: int) -> None:
        self._done += n_bytes
        now = time.monotonic()
        if now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        mib = self._done / 2**20
        if self._total:
            share = min(self._done / self._total, 1.0)
            bar = "#" * int(share * 30)
            self._stream.write(f"\r[{bar:<30}] {share:6.1%} {mib:8.1f} MiB")
        else:
            self._stream.write(f"\r{mib:8.1f} MiB read")
        self._stream.flush()

    def close(self) -> None:
        if self._last_draw:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()


def _open_binary(name: str) -> IO[bytes]:
    return sys.stdin.buffer if name == "-" else open(name, "rb")


def _input_size(name: str) -> int | None:
    return None if name == "-" else os.path.getsize(name)


def _print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


def _cmd_validate(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.capture import audit_capture

    show_progress = not args.no_progress and sys.stderr.isatty()
    progress = _Progress(_input_size(args.file), sys.stderr) if show_progress else None
    with _open_binary(args.file) as stream:
        lines: Iterator[bytes] = iter(stream)
        report = audit_capture(
            lines,
            max_listed=args.max_listed,
            on_line=progress.advance if progress else None,
        )
    if progress:
        progress.close()
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.render())
    return EXIT_OK if report.clean else EXIT_PROBLEMS


def _cmd_inspect(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.tensor_summary import summarize_frame
    from juniper_cascor_protocol.worker import MAX_FRAME_BYTES

    with _open_binary(args.file) as stream:
        # One byte past the limit is enough for decode to name the oversize; never read more.
        data = stream.read(MAX_FRAME_BYTES + 1)
    try:
        summary = summarize_frame(data)
    except ValueError as error:
        if args.json:
            _print_json({"valid": False, "reason": str(error), "frame_bytes": len(data)})
        else:
            print(f"malformed frame ({len(data)} bytes): {error}")
        return EXIT_PROBLEMS
    if args.json:
        _print_json({"valid": True, **summary.to_json()})
    else:
        print(summary.render())
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.schema import check_schemas, write_schemas

    if args.check:
        problems = check_schemas(args.out)
        for problem in problems:
            print(problem)
        if problems:
            print(f"schemas in {args.out} differ from the models: run without --check to update")
            return EXIT_PROBLEMS
        print(f"schemas in {args.out} match the models")
        return EXIT_OK
    written = write_schemas(args.out)
    print(f"wrote {len(written)} schemas to {args.out}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from juniper_cascor_protocol.demo import DemoOptions, run_demo_sync
    except ImportError as error:
        print(
            f"the demo needs websockets ({error}): pip install 'juniper-cascor-protocol[cli]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        options = DemoOptions(frames=args.frames, clients=args.clients, tensor_mb=args.tensor_mb)
    except ValueError as error:
        print(f"juniper-cascor-protocol demo: {error}", file=sys.stderr)
        return EXIT_USAGE
    report = run_demo_sync(options)
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.render())
    return EXIT_PROBLEMS if report.problems else EXIT_OK


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of the command line: its ``demo``, ``validate``, ``inspect``, ``schema``."""
    from juniper_cascor_protocol import __version__

    parser = argparse.ArgumentParser(
        prog="juniper-cascor-protocol",
        description="Tools for the juniper-cascor wire protocol.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    demo = add(
        "demo",
        "Run a loopback server, a worker and training clients over all three endpoints "
        "and print a summary.",
    )
    demo.add_argument("--frames", type=_positive_int, default=2000, help="broadcast frames (2000)")
    demo.add_argument("--clients", type=_positive_int, default=2, help="training clients (2)")
    demo.add_argument(
        "--tensor-mb", type=_positive_float, default=8.0, help="size of the largest tensor (8 MB)"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(handler=_cmd_demo)

    validate = add(
        "validate",
        "Validate a JSON-lines capture of /ws/training or /ws/control frames: counts per type, "
        "unknown labels, invalid frames with line numbers and reasons, seq gaps.",
    )
    validate.add_argument("file", metavar="FILE", help="capture file, or - for standard input")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.add_argument(
        "--max-listed",
        type=_positive_int,
        default=50,
        help="invalid frames and seq problems listed in detail; all are counted (50)",
    )
    validate.add_argument(
        "--no-progress", action="store_true", help="no progress bar (drawn only on a terminal)"
    )
    validate.set_defaults(handler=_cmd_validate)

    inspect = add(
        "inspect",
        "Decode one binary tensor frame and print its shape, dtype, size and statistics, "
        "or the precise reason it is malformed.",
    )
    inspect.add_argument("file", metavar="FILE", help="frame file, or - for standard input")
    inspect.add_argument("--json", action="store_true", help="print the result as JSON")
    inspect.set_defaults(handler=_cmd_inspect)

    schema = add("schema", "Write the JSON Schemas of every envelope and worker message.")
    schema.add_argument(
        "--out", type=Path, default=Path("schemas"), help="output directory (./schemas)"
    )
    schema.add_argument(
        "--check", action="store_true", help="compare with --out instead of writing; 1 on drift"
    )
    schema.set_defaults(handler=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except OSError as error:
        print(f"juniper-cascor-protocol {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    raise SystemExit(main())
