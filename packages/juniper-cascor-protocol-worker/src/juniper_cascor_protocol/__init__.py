"""juniper-cascor wire protocol: the top level of the ``juniper_cascor_protocol`` namespace.

``juniper_cascor_protocol`` is one import namespace shared by several distributions. The worker
distribution owns this ``__init__`` because the top level re-exports worker names only: 0.1/0.2's
documented ``from juniper_cascor_protocol import BinaryFrame, WorkerMessageType`` then works
wherever the worker wheel is installed, alone in a slim worker image or under the meta-package.
The other distributions ship namespace portions (no ``__init__.py`` here); ``pkgutil.extend_path``
finds them wherever they are installed: the same site-packages for wheels, separate ``src/``
folders for the uv workspace's editable installs.

``import juniper_cascor_protocol`` never imports Pydantic; the envelopes live in
``juniper_cascor_protocol.envelope``.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from juniper_cascor_protocol._version import __version__
from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType

# The order is part of the 0.1/0.2 contract.
__all__ = ["__version__", "WorkerMessageType", "BinaryFrame"]  # noqa: RUF022
