"""The sync API of fastapi-depends-anywhere: call dependency-injected code from sync code.

The daemon-loop bridge and the sync decorators are being built; this distribution
currently only reserves the import package.
"""

from importlib.metadata import version as _version

__version__ = _version("fda-sync")

__all__ = ["__version__"]
