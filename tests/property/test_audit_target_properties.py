"""The audit view's target rule (``projections.audit.targets``): the users an event concerns
other than its actor, or the actor alone when nobody else is concerned."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.audit import targets

ids = st.uuids().map(str)


@settings(max_examples=200, deadline=None)
@given(st.lists(ids, max_size=4, unique=True), st.none() | ids, st.lists(ids, max_size=2))
def test_the_target_is_every_concerned_user_but_the_actor(
    users: list[str], actor: str | None, patients: list[str]
) -> None:
    subjects = [f"user:{u}" for u in users] + [f"patient:{p}" for p in patients]
    header = SimpleNamespace(subjects=tuple(sorted(subjects)))
    found = targets(header, actor)  # type: ignore[arg-type]
    named = [] if found is None else found.split(" ")
    others = [u for u in users if u != actor]
    if others:
        assert sorted(named) == sorted(others)
    elif users:
        assert named == [actor]  # an event about its actor alone: a login, a password change
    else:
        assert found is None
    assert set(named) <= set(users)  # never a patient
