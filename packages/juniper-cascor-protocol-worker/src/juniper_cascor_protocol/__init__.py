"""juniper-cascor wire protocol: the meta-package's top level.

``juniper_cascor_protocol`` is one import namespace shared by three distributions. The envelope
and worker wheels ship namespace portions (no ``__init__.py`` at this level); this meta-package
owns the ``__init__`` and extends ``__path__`` with ``pkgutil.extend_path`` so the portions are
found wherever they are installed — the same site-packages for wheels, separate ``src/`` folders
for the uv workspace's editable installs.

The top level re-exports the worker names only, so ``import juniper_cascor_protocol`` never
imports Pydantic; the envelopes live in ``juniper_cascor_protocol.envelope``.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from importlib.metadata import version as _distribution_version

from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType

__version__: str = _distribution_version("juniper-cascor-protocol")

# The order is part of the 0.1/0.2 contract.
__all__ = ["__version__", "WorkerMessageType", "BinaryFrame"]  # noqa: RUF022
