"""The version of tinyres (one place: the package, the command line and pyproject.toml read it)."""
__version__ = "0.1.0"
