"""Record: what a NamedTuple gave the small value classes on every command's
path (equality, hashing, a repr, unpacking, _asdict, _replace), for a
fraction of its cost at import. Defining a NamedTuple generates and compiles
its __new__ and makes a ForwardRef (another compile) of each annotation: over
a million instructions a class, at every start. A Record subclass is an
ordinary class: it names its fields in `__slots__` (the same order as its
__init__'s parameters; tests/test_record.py checks every one) and assigns
them in __init__."""

from typing import Any


class Record:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__slots__])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({shown})"

    def __iter__(self) -> Any:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self.__slots__)

    def __getitem__(self, index: Any) -> Any:
        return self._values()[index]

    def _asdict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def _replace(self, **changes: Any) -> Any:
        return type(self)(**(self._asdict() | changes))
