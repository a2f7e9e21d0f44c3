"""The command line: each command parses options, calls the library once, renders, and picks the
exit code. ``gradcheck_cli.cli:main`` is the console script."""
from .app import app, main

__all__ = ["app", "main"]
