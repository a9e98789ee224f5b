"""What every subcommand's parser shares: one-line errors, subcommands that must be given, values that
start with '-' (negative coordinates), argument types and help texts."""

import argparse
import re

ADDRESS_HELP = ("the Ray to run on (default: a private local Ray; 'auto' joins the cluster this machine belongs to; "
                "ray://HEAD:10001 a remote one)")


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad arguments end in one line on stderr and exit code 2, like every other input error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A word starting with '-' and a digit is a value (`--point -5,10`, `--box -4,0,20,30`), not an
        # option, as in Python >= 3.13's argparse; 3.11's takes only a plain number such as -5 for one.
        self._negative_number_matcher = re.compile(r"-\.?\d")

    def parse_known_args(self, args=None, namespace=None):
        """Subcommands (add_subparsers with a `dest`) are required: leaving one out lists them. argparse's own
        required=True would only name the dest ("the following arguments are required: command")."""
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and getattr(namespace, action.dest, None) is None:
                self.error(f"choose a command: {', '.join(action.choices)}")
        return namespace, extras

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def coordinates(count: int, what: str):
    """An argparse type for `count` comma-separated numbers, e.g. X,Y."""

    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != count:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return values

    return parse
