"""The installed version of gankit (a leaf module: io and the caches read it)."""

__version__ = "0.1.0"
