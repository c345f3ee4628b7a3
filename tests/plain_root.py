"""pytest plugin (loaded by pyproject.toml's `addopts`): collect the repository root as a plain directory.

The repository root is the `mobilevideogpt` package, so it has an `__init__.py`. pytest would collect it as a Package
and import that file under the clone folder's name, which fails when the name is not a Python identifier (a clone
into `mobile-videogpt/`, say).
"""

import pytest


def pytest_collect_directory(path, parent):
    if path == parent.config.rootpath:
        return pytest.Dir.from_parent(parent, path=path)
    return None
