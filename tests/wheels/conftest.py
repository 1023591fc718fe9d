"""The install-shape tests run only in the venvs that ``nox -s wheels`` makes from the built
wheels, where ``FDA_WHEEL_SHAPE`` names the shape. In the workspace, every distribution is
installed at once and the shapes cannot be told apart, so these files are not collected."""

from __future__ import annotations

import os

if "FDA_WHEEL_SHAPE" not in os.environ:
    collect_ignore_glob = ["test_*.py"]
