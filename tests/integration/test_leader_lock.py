"""One scheduler at a time: the second waits for the lock until the first lets go."""

from __future__ import annotations

import pytest

from cerniq_outreach.adapters.leader_lock import FileLeaderLock, LeaderLock, PostgresLeaderLock


class GiveUpAfter:
    """A stop signal that says "give up" after a number of polls (no waiting at all)."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    def is_set(self) -> bool:
        return self.polls <= 0

    def wait(self, timeout: float) -> bool:
        del timeout
        self.polls -= 1
        return self.is_set()


@pytest.fixture(params=["postgres", "file"])
def locks(request, tmp_path) -> tuple[LeaderLock, LeaderLock]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return PostgresLeaderLock(url, key=7_220_099), PostgresLeaderLock(url, key=7_220_099)
    path = tmp_path / "cerniq.db.scheduler.lock"
    return FileLeaderLock(path), FileLeaderLock(path)


def test_a_second_scheduler_waits_until_the_first_lets_go(locks):
    """Held by the first: the second polls and gives up; released: the second gets it."""
    first, second = locks
    try:
        assert first.acquire(GiveUpAfter(1))
        assert first.held()
        assert not second.acquire(GiveUpAfter(3), poll=0)
        assert not second.held()
        first.release()
        assert not first.held()
        assert second.acquire(GiveUpAfter(1))
        assert second.held()
    finally:
        first.release()
        second.release()
