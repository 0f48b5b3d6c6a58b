"""What every refresh pays before its first step: importing the code location. The heavy
libraries only some steps use are imported by those steps (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys

# Used by the quarterly refit (scikit-learn) and the review pack's charts (matplotlib) only.
LOADED_WHERE_USED = ("sklearn", "matplotlib")


def test_importing_the_code_location_loads_no_library_only_a_rare_step_uses():
    probe = (
        "import json, sys; import segment_cadence.definitions; "
        f"print(json.dumps(sorted(m for m in {LOADED_WHERE_USED!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []
