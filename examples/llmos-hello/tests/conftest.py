"""Each test gets its own llmos data dir, so nothing touches the user's journal or disk."""

import pytest


@pytest.fixture(autouse=True)
def llmos_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOS_HOME", str(tmp_path))
    monkeypatch.delenv("LLMOS_MODEL", raising=False)
    return tmp_path
