"""The ``juniper-cascor-protocol`` command-line tool.

Exit codes (the same for every command):
  0  success: the run was clean, the capture or frame is valid, the schemas are in sync
  1  problems found: invalid frames or seq problems, a malformed tensor frame, schema drift,
     or a demo run that reported problems
  2  usage error or unreadable input (argparse's own code for bad arguments)
  130  interrupted by Ctrl-C (128 + SIGINT); a command that has a partial summary prints it
  141  the reader of the output went away (128 + SIGPIPE, as `cat` or `yes` piped into
       `head` report it); nothing is printed about it
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from juniper_cascor_protocol.terminal import PROG, print_error

if TYPE_CHECKING:
    from juniper_cascor_protocol.capture import CaptureAudit
    from juniper_cascor_protocol.capture_input import CaptureLine

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_EPILOG = """\
exit codes:
  0    success (clean run, valid input, schemas in sync)
  1    problems found (invalid frames, seq problems, malformed tensor, schema drift)
  2    usage error or unreadable input
  130  interrupted (Ctrl-C); a partial summary is printed where there is one
  141  the output's reader went away (a pipe into head, say); nothing more is printed
"""


def _open_binary(name: str) -> IO[bytes]:
    return sys.stdin.buffer if name == "-" else open(name, "rb")


def _input_size(name: str) -> int | None:
    if name == "-":
        return None
    size = os.stat(name).st_size
    return size or None  # 0: a pipe or a special file, whose size is unknown


def _print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


def _progress(args: argparse.Namespace) -> Any:
    """A ``rich`` progress bar on stderr, or None when stderr is no terminal or it is off."""
    if args.no_progress or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.capture import CaptureAudit
    from juniper_cascor_protocol.capture_file import longest_line
    from juniper_cascor_protocol.capture_input import CaptureInputError, read_capture_lines

    audit = CaptureAudit(
        max_listed=args.max_listed,
        max_frame_bytes=args.max_frame_bytes,
        max_unknown_types=args.max_unknown_types,
    )
    progress = _progress(args)
    interrupted = False
    with _open_binary(args.file) as stream:
        lines = read_capture_lines(stream, max_line_bytes=longest_line(args.max_frame_bytes))
        try:
            if progress is None:
                _audit_lines(audit, lines, None)
            else:
                with progress:
                    task = progress.add_task("validate", total=_input_size(args.file))
                    _audit_lines(audit, lines, lambda n: progress.advance(task, n))
        except CaptureInputError as error:
            print_error(args.command, f"{args.file}: {error}")
            return EXIT_USAGE
        except KeyboardInterrupt:
            interrupted = True
    report = audit.finish()
    if interrupted:
        report.interrupted_at_line = audit.last_line
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.render())
    if interrupted:
        print_error(args.command, f"interrupted at line {audit.last_line}: the report is partial")
        return EXIT_INTERRUPTED
    return EXIT_OK if report.clean else EXIT_PROBLEMS


def _audit_lines(
    audit: CaptureAudit, lines: Iterator[CaptureLine], advance: Callable[[int], None] | None
) -> None:
    for line in lines:
        if advance is not None:
            advance(line.size + 1)
        if line.too_long:
            audit.feed_oversized(line.number, line.size)
        else:
            audit.feed_line(line.number, line.data)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.worker import MAX_FRAME_BYTES

    if args.file == "-":
        # One byte past the limit is enough to tell an oversized input; never read more.
        data = sys.stdin.buffer.read(MAX_FRAME_BYTES + 1)
        if len(data) > MAX_FRAME_BYTES:
            return _inspect_refused(
                args,
                f"standard input holds more than {MAX_FRAME_BYTES} bytes, the frame limit "
                "(MAX_FRAME_BYTES); not read further",
                None,
            )
        return _inspect_buffer(args, data)
    size = os.stat(args.file).st_size
    if size > MAX_FRAME_BYTES:
        return _inspect_refused(
            args,
            f"the file holds {size} bytes, more than the frame limit of {MAX_FRAME_BYTES} "
            "bytes (MAX_FRAME_BYTES); not read",
            size,
        )
    if size == 0:
        return _inspect_buffer(args, b"")
    import mmap

    with (
        open(args.file, "rb") as file,
        mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view,
    ):
        # Decoded without a copy and summarised in chunks: the frame's own pages are the memory.
        return _inspect_buffer(args, view)


def _inspect_buffer(args: argparse.Namespace, data: Any) -> int:
    from juniper_cascor_protocol.tensor_summary import summarize_frame

    try:
        summary = summarize_frame(data)
    except ValueError as error:
        return _inspect_refused(args, str(error), len(data))
    if args.json:
        _print_json({"valid": True, **summary.to_json()})
    else:
        print(summary.render())
    return EXIT_OK


def _inspect_refused(args: argparse.Namespace, reason: str, size: int | None) -> int:
    if args.json:
        _print_json({"valid": False, "reason": reason, "frame_bytes": size})
    elif size is None:
        print(f"malformed frame: {reason}")
    else:
        print(f"malformed frame ({size} {'byte' if size == 1 else 'bytes'}): {reason}")
    return EXIT_PROBLEMS


def _cmd_schema(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.asyncapi import check_asyncapi, write_asyncapi
    from juniper_cascor_protocol.schema import check_schemas, schema_document, write_schemas

    if args.asyncapi and args.stdout is not None:
        print_error("schema", "--asyncapi writes a file: use it without --stdout")
        return EXIT_USAGE
    if args.stdout is not None:
        sys.stdout.write(schema_document(args.stdout))
        return EXIT_OK
    if args.check:
        problems = [] if args.asyncapi else check_schemas(args.out)
        problems += check_asyncapi(args.out)
        for problem in problems:
            print(problem)
        if problems:
            print(
                f"schemas in {args.out} differ from the models: "
                f"run `{PROG} schema --out {args.out}` to update them"
            )
            return EXIT_PROBLEMS
        print(f"schemas in {args.out} match the models")
        return EXIT_OK
    if args.asyncapi:
        print(f"wrote the AsyncAPI document {write_asyncapi(args.out)}")
        return EXIT_OK
    written = write_schemas(args.out)
    asyncapi = write_asyncapi(args.out)
    print(f"wrote {len(written)} schemas and the AsyncAPI document {asyncapi.name} to {args.out}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.demo.command import demo_command

    return demo_command(
        frames=args.frames,
        clients=args.clients,
        tensor_mb=args.tensor_mb,
        timeout_s=args.timeout,
        as_json=args.json,
        show_status=not args.no_progress,
    )


def _cmd_record(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.record import record_command

    return record_command(
        args.url,
        out=args.out,
        endpoint=None if args.endpoint is None else f"/ws/{args.endpoint}",
        frames=args.frames,
        duration=args.duration,
        max_frame_bytes=args.max_frame_bytes,
        as_json=args.json,
        show_status=not args.no_progress,
    )


def _cmd_replay(args: argparse.Namespace) -> int:
    from juniper_cascor_protocol.replay import replay_command

    return replay_command(
        args.capture,
        host=args.host,
        port=args.port,
        speed=None if args.as_fast_as_possible else args.speed,
        passes=args.passes,
        wait_for_client=args.wait_for_client,
        max_frame_bytes=args.max_frame_bytes,
        as_json=args.json,
        show_status=not args.no_progress,
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of the command line, one subcommand per task:

    - ``demo``: run a loopback server, a worker and clients over all three endpoints;
    - ``validate``: audit a capture of ``/ws/training`` and ``/ws/control`` traffic;
    - ``inspect``: decode one binary tensor frame, or say why it is malformed;
    - ``schema``: write, check or print the JSON Schemas and the AsyncAPI document;
    - ``record``: record a live ``/ws/training`` or ``/ws/control`` endpoint into a capture;
    - ``replay``: serve a capture as a live ``/ws/training`` endpoint.
    """
    from juniper_cascor_protocol import __version__
    from juniper_cascor_protocol.capture import (
        DEFAULT_MAX_FRAME_BYTES,
        DEFAULT_MAX_LISTED,
        DEFAULT_MAX_UNKNOWN_TYPES,
    )
    from juniper_cascor_protocol.schema import SCHEMA_DOCUMENTS

    parser = argparse.ArgumentParser(
        prog=PROG,
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
    # The limits are the demo's (juniper_cascor_protocol.demo.MAX_*; a test holds them equal).
    demo.add_argument(
        "--frames",
        type=_positive_int,
        default=2000,
        help="broadcast frames, 1 to 1,000,000, and frames x clients at most 10,000,000 (2000)",
    )
    demo.add_argument(
        "--clients",
        type=_positive_int,
        default=2,
        help="training clients, and as many workers with one task each, 1 to 64 (2)",
    )
    demo.add_argument(
        "--tensor-mb",
        type=_positive_float,
        default=8.0,
        help="size of each task's input tensor in MB (10**6 bytes), above 0 up to 64 (8)",
    )
    demo.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="stop the traffic after this long, up to 3600 (default: 60 s plus 1 s per 5,000 "
        "frames x clients and per 10 MB of tensors)",
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument(
        "--no-progress", action="store_true", help="no live display (drawn only on a terminal)"
    )
    demo.set_defaults(handler=_cmd_demo)

    validate = add(
        "validate",
        "Audit a capture of /ws/training and /ws/control traffic (a record file, or plain JSON "
        "lines of frames or /ws/control requests; gzip, UTF-16 or a BOM are recognised) with "
        "the library's own sessions: frames per type, unknown types by name, every invalid "
        "frame with its line and reason, a timeline of seq gaps, duplicates, resets and reseeds, "
        "and chunked messages.",
    )
    validate.add_argument("file", metavar="FILE", help="capture file, or - for standard input")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.add_argument(
        "--max-listed",
        type=_positive_int,
        default=DEFAULT_MAX_LISTED,
        help=f"invalid frames and seq events listed in detail; all are counted "
        f"({DEFAULT_MAX_LISTED})",
    )
    validate.add_argument(
        "--max-frame-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_FRAME_BYTES,
        metavar="N",
        help="the longest server frame read, in UTF-8 bytes; a longer one is invalid "
        f"(default {DEFAULT_MAX_FRAME_BYTES}, the 1 MiB a client reads; requests: the "
        "server's 64 KiB)",
    )
    validate.add_argument(
        "--max-unknown-types",
        type=_positive_int,
        default=DEFAULT_MAX_UNKNOWN_TYPES,
        metavar="N",
        help="unknown type names reported by name; frames of further names are counted "
        f"together ({DEFAULT_MAX_UNKNOWN_TYPES})",
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

    schema = add(
        "schema",
        "Write the JSON Schemas of every envelope, control request and worker message (the "
        "folder then holds exactly the generated *.schema.json files), check them, or print "
        "one endpoint's combined schema.",
    )
    schema.add_argument(
        "--out", type=Path, default=Path("schemas"), help="output directory (./schemas)"
    )
    target = schema.add_mutually_exclusive_group()
    target.add_argument(
        "--check", action="store_true", help="compare with --out instead of writing; 1 on drift"
    )
    target.add_argument(
        "--stdout",
        choices=SCHEMA_DOCUMENTS,
        metavar="{" + ",".join(SCHEMA_DOCUMENTS) + "}",
        help="print one self-contained schema instead of writing files: every frame of an "
        "endpoint (control: the server's frames; control-request: a client's request)",
    )
    schema.add_argument(
        "--asyncapi",
        action="store_true",
        help="only the AsyncAPI 3.0 document of the three endpoints, asyncapi.json in --out "
        "(written with the schemas too); with --check, check only it",
    )
    schema.set_defaults(handler=_cmd_schema)

    record = add(
        "record",
        "Record a live /ws/training or /ws/control endpoint into a capture file, checking every "
        "frame with the library's client session, with a live status line; stops on Ctrl-C, "
        "after --frames or --duration, or when the server closes.",
    )
    record.add_argument("url", metavar="URL", help="ws:// or wss:// URL of the endpoint")
    record.add_argument(
        "-o", "--out", required=True, metavar="FILE", help="capture file, or - for standard output"
    )
    record.add_argument(
        "--endpoint",
        choices=("training", "control"),
        help="the endpoint, when the URL's path does not end in /ws/training or /ws/control",
    )
    record.add_argument("--frames", type=_positive_int, metavar="N", help="stop after N frames")
    record.add_argument(
        "--duration", type=_positive_float, metavar="SECONDS", help="stop after SECONDS"
    )
    record.add_argument(
        "--max-frame-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_FRAME_BYTES,
        metavar="N",
        help=f"the longest frame the session reads, in UTF-8 bytes (default "
        f"{DEFAULT_MAX_FRAME_BYTES}); one up to 4 times longer is recorded and counted invalid, "
        "a longer one ends the connection (1009)",
    )
    record.add_argument("--json", action="store_true", help="print the summary as JSON")
    record.add_argument(
        "--no-progress", action="store_true", help="no status line (drawn only on a terminal)"
    )
    record.set_defaults(handler=_cmd_record)

    replay = add(
        "replay",
        "Serve a capture as a live /ws/training endpoint (seq, initial_metrics for each client, "
        "chunking) at its original pace, faster, or as fast as possible.",
    )
    replay.add_argument(
        "capture",
        metavar="CAPTURE",
        help="capture file: record's, or frame lines; gzip, UTF-16 or a BOM are recognised",
    )
    replay.add_argument("--host", help="address to listen on (127.0.0.1)")
    replay.add_argument("--port", type=int, help="port; 0 picks a free one (8765)")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="FACTOR",
        help="pace relative to the capture: 2 is twice as fast (1)",
    )
    pace.add_argument(
        "--as-fast-as-possible", action="store_true", help="send without waiting between frames"
    )
    replay.add_argument(
        "--loop",
        dest="passes",
        nargs="?",
        type=_positive_int,
        const=None,
        default=1,
        metavar="N",
        help="play the capture N times, or until Ctrl-C without N (once)",
    )
    replay.add_argument(
        "--wait-for-client", action="store_true", help="start playing when a client has joined"
    )
    replay.add_argument(
        "--max-frame-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_FRAME_BYTES,
        metavar="N",
        help="a longer message goes out as chunked_message frames "
        f"(default {DEFAULT_MAX_FRAME_BYTES})",
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.add_argument(
        "--no-progress", action="store_true", help="no status line (drawn only on a terminal)"
    )
    replay.set_defaults(handler=_cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Ctrl-C gives one line on stderr and 130 (a command with a partial summary prints it first);
    a reader that goes away (``| head -1``) ends the command quietly with 141.
    """
    command: str | None = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        code: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
    except KeyboardInterrupt:
        print_error(command, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as error:
        print_error(command, str(error))
        return EXIT_USAGE
    return code


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (a test's captured stdout)
        pass


if __name__ == "__main__":
    raise SystemExit(main())
