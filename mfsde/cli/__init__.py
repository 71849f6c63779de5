"""Command-line interface: ``mfsde fit | evaluate | compare | explain | demo``.

Also reachable as ``python -m mfsde``. Every subcommand has ``--help`` with examples. Errors in
the inputs (a missing file, an unknown preset, task or config key, a bad value) print one
line ``mfsde: error: …`` to stderr and exit with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mfsde.cli._commands import cmd_compare, cmd_demo, cmd_evaluate, cmd_explain, cmd_fit, print_explain_summary
from mfsde.cli._inputs import (
    CLIError,
    build_config,
    data_spec,
    get_task,
    load_data,
    make_task,
    parse_overrides,
    parse_value,
)
from mfsde.cli._parser import build_parser
from mfsde.training._runlock import RunLocked

__all__ = [
    "main",
    "build_parser",
    "CLIError",
    "parse_value",
    "parse_overrides",
    "build_config",
    "data_spec",
    "load_data",
    "get_task",
    "make_task",
    "cmd_fit",
    "cmd_evaluate",
    "cmd_compare",
    "cmd_explain",
    "cmd_demo",
    "print_explain_summary",
]

# -- entry point --------------------------------------------------------------------------------------
_USER_ERRORS = (
    CLIError,
    FileNotFoundError,
    NotADirectoryError,
    KeyError,
    ValueError,
    TypeError,
    ImportError,
    FloatingPointError,
    RunLocked,
    OSError,
)


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args and isinstance(e.args[0], str):
        msg = e.args[0]
    else:
        msg = str(e) or type(e).__name__
    msg = " ".join(msg.split())  # one line
    if isinstance(e, OSError) and getattr(e, "filename", None) and str(e.filename) not in msg:
        msg = f"{e.strerror or msg}: {e.filename}"
    return msg


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status
    (0 ok, 2 bad input). Used by the ``mfsde`` script and ``python -m mfsde``."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 on bad usage
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from mfsde._plugins import load_plugins

    try:
        load_plugins(args.plugin)
    except ImportError as e:
        print(f"mfsde {args.command}: error: --plugin: {e}", file=sys.stderr)
        return 2
    if args.command != "demo":  # the demo sets its own (1 unless --threads)
        import torch

        from mfsde.training._runs import default_threads

        torch.set_num_threads(args.threads or default_threads())
    try:
        return int(args.func(args) or 0)
    except _USER_ERRORS as e:
        if args.debug:
            raise
        print(f"mfsde {args.command}: error: {_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # TrainingInterrupted says where the checkpoint is
        print(f"mfsde {args.command}: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr)
        return int(getattr(e, "exit_code", 130))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
