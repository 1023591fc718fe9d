"""The install-shape tests run only in the venvs that ``nox -s release`` (or ``wheels``) makes
from the built wheels, where ``FDA_WHEEL_SHAPE`` names the shape. In the workspace, every
distribution is installed at once and the shapes cannot be told apart, so these files are not
collected. ``FDA_DIST`` names the folder of the built artifacts for their checks."""

from __future__ import annotations

import os

if "FDA_WHEEL_SHAPE" not in os.environ:
    collect_ignore_glob = ["test_*.py"]
elif "FDA_DIST" not in os.environ:  # the artifacts' checks: `nox -s release` sets it
    collect_ignore_glob = ["test_artifacts.py"]
