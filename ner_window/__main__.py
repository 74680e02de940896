"""``python -m ner_window``: the same command line as ``ner-window``."""

from .cli import main

main()
