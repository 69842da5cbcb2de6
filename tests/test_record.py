"""dmtool/record.py: a Record's fields are its __slots__, in the order of its
__init__'s parameters (unpacking, indexing, _replace and equality rely on it),
and it behaves as the NamedTuple it replaced."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import dmtool
from dmtool.record import Record


def every_record() -> list[type[Record]]:
    for m in pkgutil.walk_packages(dmtool.__path__, "dmtool."):
        if ".x." in m.name or m.name.endswith(".x"):
            continue  # tweepy's side: no Records there, and importing it is slow
        importlib.import_module(m.name)

    def below(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *below(sub))]

    return below(Record)


def test_every_records_slots_are_its_init_parameters_in_order() -> None:
    records = every_record()
    assert len(records) >= 20  # the settings, models, policy and store records
    for cls in records:
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        assert list(cls.__slots__) == params, cls


def test_a_record_unpacks_compares_and_replaces_as_a_namedtuple_did() -> None:
    from dmtool.settings import PolicySettings

    p = PolicySettings(daily_sends=7)
    assert p == PolicySettings(90, 2, 7) and p != PolicySettings()
    assert hash(p) == hash(PolicySettings(daily_sends=7))
    assert tuple(p) == (90, 2, 7, 5, 0.9, 2) and p[2] == 7 and len(p) == 6
    assert p._replace(consent_days=30)._asdict()["consent_days"] == 30
    assert p.consent_days == 90  # _replace made another
    assert repr(p).startswith("PolicySettings(consent_days=90, max_unanswered=2, daily_sends=7")
