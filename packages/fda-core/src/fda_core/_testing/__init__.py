"""What the pytest plugin (``fda_core.pytest_plugin``) is made of."""
