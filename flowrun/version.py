"""flowrun's version (one place; the package and the server report it)."""

__version__ = "0.1.0"
