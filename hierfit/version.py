"""The package version, in a module of its own so that nothing circular needs it."""

__version__ = "0.1.0"
