"""One way for every entry point to report a user's mistake: one line on stderr, non-zero exit."""
import os
import sys


class UserError(Exception):
    """A mistake in the user's input (file, key, value). The message names the culprit and what was expected."""


def run_cli(main, argv=None):
    """Run ``main(argv)``; a UserError becomes ``error: <message>`` on stderr and exit code 2."""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except BrokenPipeError:
        # whoever read stdout has gone (e.g. `eval.py --help | head`): stop quietly, as other command-line
        # tools do, instead of a traceback; stdout goes to /dev/null so the exit-time flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool killed by the broken pipe
    sys.exit(code or 0)
