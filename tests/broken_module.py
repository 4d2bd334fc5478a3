"""A module that fails at import, for config validation tests."""

raise RuntimeError("this module is broken on purpose")
