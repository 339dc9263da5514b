"""The OpenMP wait policy is set before torch loads libgomp (see suite/__init__.py for why)."""
from __future__ import annotations

import os
import subprocess
import sys


def _policy_seen_by_torch_import(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    # The console script imports suite.cli first; suite's package init must act before torch loads.
    code = "import suite.cli, sys, torch, os; sys.stdout.write(os.environ.get('OMP_WAIT_POLICY', ''))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout


def test_passive_by_default_and_before_torch():
    assert _policy_seen_by_torch_import(None) == "PASSIVE"
    code = "import suite, sys; sys.stdout.write(str('torch' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "False", "importing suite must not load torch before the policy is set"


def test_a_users_explicit_policy_is_kept():
    assert _policy_seen_by_torch_import("ACTIVE") == "ACTIVE"
