"""``python -m juniper_cascor_protocol``: the ``juniper-cascor-protocol`` tool."""

from _juniper_cascor_protocol_cli import main

raise SystemExit(main())
