"""The test suite, laid out like the package: tests/<sub-package>/test_<module>.py."""

import pytest

# Shared checks keep pytest's detailed assertion messages.
pytest.register_assert_rewrite("tests.helpers")
