"""Escaping user text for Textual markup."""


def escape(text: str) -> str:
    """Make ``text`` literal in Textual markup.

    Textual's own ``escape`` leaves ``[C]`` alone, yet the markup parser swallows it as a
    tag; layer docs and messages are full of shapes like ``[C]``, so escape every ``[``.
    """
    return str(text).replace("[", "\\[")
