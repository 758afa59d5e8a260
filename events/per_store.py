"""One object per datastore, shared by whatever works on that store in this process."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PerDatastore(Generic[T]):
    """``per(datastore)``: the datastore's one ``T``, made by ``make`` on first use and
    forgotten with the datastore."""

    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._made: weakref.WeakKeyDictionary[Any, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, datastore: Any) -> T:
        with self._lock:
            found = self._made.get(datastore)
            if found is None:
                found = self._made[datastore] = self._make(datastore)
            return found
