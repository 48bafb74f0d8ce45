"""docs/e2e-test-vectors.json is what scripts/e2e-vectors computes with Python's `cryptography`
(OpenSSL): an implementation independent of Parley's Swift and browser code, which each check
every vector in their own tests."""

import subprocess
import sys

from conftest import ROOT


def test_the_committed_vectors_are_what_an_independent_implementation_computes():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "e2e-vectors"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
