"""``python -m juniper_cascor_protocol``: the ``juniper-cascor-protocol`` tool."""

from juniper_cascor_protocol.cli import main

raise SystemExit(main())
