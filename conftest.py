"""Settings shared by every test suite of the workspace."""

from __future__ import annotations

import os

from hypothesis import settings

# In CI the property tests draw the same examples on every run, so a result never depends on
# luck; elsewhere they explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
