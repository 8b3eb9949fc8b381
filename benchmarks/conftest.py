"""Makes the benchmarks' shared modules importable (``benchmarks.envelope_mix``, the frame mix
both envelope benchmarks measure, and ``benchmarks.interleaved``): the tests are imported with
``--import-mode=importlib``, which puts no folder on the path."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
