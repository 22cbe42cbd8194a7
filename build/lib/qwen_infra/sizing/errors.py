"""SizingError: the one exception the engine raises for a question it cannot answer as asked."""


class SizingError(ValueError):
    """The question cannot be answered as asked (unknown model, impossible argument)."""
