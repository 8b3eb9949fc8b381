"""The version of the juniper-cascor-protocol distributions, one for all (0.1/0.2 had this module).

It is read from the installed worker distribution's metadata, which the build takes from the
repository's ``VERSION`` file like every other distribution's.
"""

from importlib.metadata import version as _distribution_version

__version__: str = _distribution_version("juniper-cascor-protocol-worker")

__all__ = ["__version__"]
