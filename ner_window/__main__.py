"""``python -m ner_window``: the same command line as ``ner-window``."""

from .cli import console_main

console_main()
