"""The ``ppml`` application: commands, and the mapping of errors to one-line messages."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from ppml import __version__
from ppml.cli import demo, keys, model, price, roles, service
from ppml.cli.console import stderr
from ppml.errors import DataError, FileFormatError, PassphraseError, PpmlError

EXIT_ERROR = 1
# What the user gave cannot be used: a malformed input file or CSV row, as
# click already answers a malformed command line. Scripts can tell "fix the
# input" (2) from "the operation was refused or failed" (1).
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="ppml",
    help=(
        "Private predictions with the Paillier cryptosystem.\n\n"
        "The customer encrypts its data under its own key, the server computes its model "
        "on the ciphertexts without seeing them, and only the customer can read the result."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command("keygen", rich_help_panel="Customer")(keys.keygen)
app.command("encrypt", rich_help_panel="Customer")(roles.encrypt)
app.command("decrypt", rich_help_panel="Customer")(roles.decrypt)
app.command("train", rich_help_panel="Server")(roles.train)
app.command("predict", rich_help_panel="Server")(roles.predict)
app.command("serve", rich_help_panel="Server")(service.serve)
app.add_typer(model.app, name="model", rich_help_panel="Server")
app.command("query", rich_help_panel="Customer")(service.query)
app.command("page-hashes", rich_help_panel="Customer")(service.page_hashes)
app.command("price", rich_help_panel="Customer")(price.price)
app.add_typer(keys.app, name="keys", rich_help_panel="Keys")
app.command("demo", rich_help_panel="Try it")(demo.demo)


def _show_version(value: bool) -> None:
    if value:
        print(f"ppml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Private predictions with the Paillier cryptosystem."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return its exit code; errors become one line on stderr."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="ppml")
    except SystemExit as finished:
        code = finished.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_ERROR)
    except PpmlError as error:
        stderr.print(f"error: {error}", highlight=False, markup=False)
        return exit_code(error)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        stderr.print(f"error: {where}{error.strerror or error}", highlight=False, markup=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        stderr.print("interrupted", highlight=False)
        return EXIT_INTERRUPTED
    return 0


def exit_code(error: PpmlError) -> int:
    """The exit code for a refused command: 2 for input that cannot be read, else 1."""
    malformed = isinstance(error, FileFormatError | DataError)
    # A wrong or missing passphrase is not a problem with the file's contents.
    return EXIT_BAD_INPUT if malformed and not isinstance(error, PassphraseError) else EXIT_ERROR


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
