"""The Events API tests' helpers (httpkit) import by name: ``http`` is the standard library's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
