"""The one error of the document generator."""


class DocGenError(Exception):
    """The code has something the document cannot describe yet (e.g. an index without its queries), or the
    document's generated-section markers are wrong. The message says what to add, and where."""
