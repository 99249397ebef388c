"""One way for every entry point to report a user's mistake: one line on stderr, non-zero exit."""
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
    sys.exit(code or 0)
