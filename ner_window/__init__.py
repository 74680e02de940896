"""ner-window: a named-entity window classifier trained by hand-written backpropagation."""

__version__ = "0.1.0"
