"""config.toml: a typed schema of dotted keys, read with tomllib, written with tomli-w.

Unknown keys and wrong types are refused with the key named, both when a value
is set and when the file is loaded, so a typo never silently changes behaviour.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmtool.errors import ConfigError, InputError
from dmtool.record import Record

if TYPE_CHECKING:
    from dmtool.settings import LintSettings, PolicySettings


# Text settings are capped too: a DM is at most 10,000 characters (lint.py).
TEXT_MAX = 10_000
NAME_MAX = 100  # one entry of a list of names
LIST_MAX = 20  # entries in a list
URL_MAX = 2_000  # a store URL with its TLS file names and options


_Type = type  # Setting.type hides the builtin in its class


class Setting(Record):
    """One key of config.toml. Every key has a range, checked when the value is
    set and when the file is loaded: a number needs `minimum` and `maximum`
    (and must be finite), text a `max_length` or `choices`, a list
    `max_items` (tests/test_config_bounds.py walks the schema, so a new key
    without its range fails). `validate` may refuse more (ValueError: why)."""

    __slots__ = ("key", "type", "default", "help", "choices", "minimum", "maximum", "ceiling",
                 "max_length", "max_items", "validate", "multiline", "optional")
    key: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...]
    minimum: float | None
    maximum: float | None
    ceiling: bool  # the maximum is one of the policy's fixed ceilings
    max_length: int | None  # text: characters; list: characters per entry
    max_items: int | None  # list: entries
    validate: Callable[[Any], None] | None
    multiline: bool  # text that may hold line breaks (else one line)
    optional: bool  # unset by default (None); `config set KEY none` unsets it again

    def __init__(self, key: str, type: _Type, default: Any, help: str,
                 choices: tuple[str, ...] = (), minimum: float | None = None,
                 maximum: float | None = None, ceiling: bool = False,
                 max_length: int | None = None, max_items: int | None = None,
                 validate: Callable[[Any], None] | None = None, multiline: bool = False,
                 optional: bool = False) -> None:
        self.key = key
        self.type = type
        self.default = default
        self.help = help
        self.choices = choices
        self.minimum = minimum
        self.maximum = maximum
        self.ceiling = ceiling
        self.max_length = max_length
        self.max_items = max_items
        self.validate = validate
        self.multiline = multiline
        self.optional = optional


def _store_url(value: str) -> None:
    """A store URL dmtool can read (a PostgreSQL URL or a SQLite file); empty is the default."""
    if value.strip():
        from dmtool.store.url import parse

        try:
            parse(value)
        except ConfigError as e:
            raise ValueError(e.message) from None


_STATIC: tuple[Setting, ...] = (
    Setting("backend", str, "x", "where X calls go: 'x' (the real API) or 'sandbox'",
            choices=("x", "sandbox")),
    Setting("identity.names", list, [],
            "names you sign DMs with (first contacts must say who writes); commas separate "
            "names, or give a list for a name with a comma: '[\"Sam, Acme support\"]'",
            max_length=NAME_MAX, max_items=LIST_MAX),
    Setting("autoack.enabled", bool, False, "send one acknowledgement when a new conversation opens"),
    Setting("autoack.text", str, "", "the acknowledgement text (no promotion, no links)",
            max_length=TEXT_MAX, multiline=True),
    Setting("sync.first_page_size", int, 2, "DM events asked for in sync's first request",
            minimum=1, maximum=100),
    Setting("sync.max_page_size", int, 100, "largest DM events page sync asks for",
            minimum=1, maximum=100),
    Setting("store.url", str, "",
            "the store: empty for this profile's SQLite file, or postgresql://USER@HOST/DB "
            "(docs/team.md); DMTOOL_DATABASE_URL overrides it",
            max_length=URL_MAX, validate=_store_url),
    Setting("sync.public_every_minutes", int, 15,
            "check mentions and your replies at most this often (sync --public forces it)",
            minimum=0, maximum=1440),
    Setting("operator.name", str, "",
            "who you are in the audit log (else DMTOOL_OPERATOR, else your login name)",
            max_length=NAME_MAX),
    Setting("hooks.on_inbound", str, "",
            "a shell command run once per new inbound DM after sync, the message as JSON on stdin",
            max_length=TEXT_MAX, multiline=True),
    Setting("hooks.timeout_s", int, 10, "seconds a hook may run before it is stopped",
            minimum=1, maximum=300),
    Setting("team.approval", str, "none",
            "who approves a draft: none (its author may), first-contact (another person "
            "approves first messages) or all (another person approves every draft); unset, "
            "none while the store has no team members and first-contact once it has",
            choices=("none", "first-contact", "all")),
    Setting("display.timezone", str, "",
            "time zone for times in text output, e.g. Asia/Tokyo (empty: TZ, else the system's)",
            max_length=64),
    Setting("team.trust_db_user", bool, False,
            "on a team store, the operator is the database user (PostgreSQL: current_user; "
            "SQLite: the OS account running dmtool), not DMTOOL_OPERATOR or operator.name "
            "(docs/team.md)"),
    # What X charges (its pay-per-use prices, US dollars) and the budgets that
    # stop dmtool before it spends more (`dmtool usage`; x-api.md "Limits and cost").
    Setting("x.budget.day_usd", float, None,
            "most dmtool may spend on X in a UTC day, in US dollars (none: no limit)",
            minimum=0, maximum=100_000, optional=True),
    Setting("x.budget.month_usd", float, None,
            "most dmtool may spend on X in a UTC calendar month, in US dollars (none: no limit)",
            minimum=0, maximum=1_000_000, optional=True),
    Setting("x.price.dm_event_read", float, 0.010, "X's price per DM event read, US dollars",
            minimum=0, maximum=10),
    Setting("x.price.dm_send", float, 0.015, "X's price per DM sent, US dollars",
            minimum=0, maximum=10),
    Setting("x.price.user_read", float, 0.010, "X's price per user read, US dollars",
            minimum=0, maximum=10),
    Setting("x.price.post_read", float, 0.001, "X's price per post read, US dollars",
            minimum=0, maximum=10),
    Setting("x.ledger.keep_days", int, 90,
            "days the request ledger keeps each request; older ones become daily totals",
            minimum=1, maximum=3650),
)

# The settings a team shares. Once the store has members they are read from the
# store (`config set` by an owner writes them there), never from a member's
# config.toml: nobody loosens the policy or switches approvals off on their own
# machine. Prefixes, so that keys added later under them are shared the day
# they land. Every other key is each machine's own and is never read from the
# store, above all operator.name, hooks.* (a shared hook would run one
# member's command on another's machine), store.url, identity.names, display.*.
TEAM_PREFIXES = ("team.", "policy.", "lint.", "autoack.", "x.budget.", "x.price.")


def is_team_key(key: str) -> bool:
    return key.startswith(TEAM_PREFIXES)

# The [lint] keys' ranges. A promotional score below 0.1 would flag every text
# (the lightest listed phrase weighs 0.5); a shouting ratio under 0.5 would
# call a text with more small letters than capitals shouting.
LINT_BOUNDS: dict[str, tuple[float, float]] = {
    "promo_warn_score": (0.1, 100), "promo_error_score": (0.1, 100),
    "shouting_ratio": (0.5, 1), "shouting_min_letters": (1, TEXT_MAX),
}


def _from_settings(section: str, cls: Any, helps: dict[str, str],
                   bounds: dict[str, tuple[float, float | None]],
                   ceilings: frozenset[str] = frozenset()) -> list[Setting]:
    """The keys of a settings record (PolicySettings, LintSettings): each field
    with its default (as its __init__ gives it), help text and range."""
    out = []
    defaults = cls()
    for name in cls.__slots__:
        default = getattr(defaults, name)
        low, high = bounds.get(name, (None, None))
        out.append(Setting(f"{section}.{name}", type(default), default, helps.get(name, ""),
                           minimum=low, maximum=high, ceiling=name in ceilings))
    return out


@cache
def _section(name: str) -> dict[str, Setting]:
    """The keys of one section. Policy and lint keys come from their settings
    records (dmtool/settings.py: reading them imports neither the policy nor lint)."""
    if name == "policy":
        from dmtool.settings import BOUNDS, CEILINGS, POLICY_HELP, PolicySettings

        settings = _from_settings("policy", PolicySettings, POLICY_HELP,
                                  {k: (low, high) for k, (_, low, high) in BOUNDS.items()},
                                  frozenset(CEILINGS))
    elif name == "lint":
        from dmtool.settings import LINT_HELP, LintSettings

        settings = _from_settings("lint", LintSettings, LINT_HELP, dict(LINT_BOUNDS))
    else:
        settings = [s for s in _STATIC if s.key.partition(".")[0] == name]
    return {s.key: s for s in settings}


def setting(key: str) -> Setting | None:
    """The schema entry of one key, or None when the key is unknown."""
    return _section(key.partition(".")[0]).get(key)


@cache
def schema() -> dict[str, Setting]:
    """Every known key, in order: the static ones, then policy and lint."""
    out = {s.key: s for s in _STATIC}
    out.update(_section("policy"))
    out.update(_section("lint"))
    return out


def _type_name(t: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number",
            str: "text", list: "a list of text"}.get(t, t.__name__)


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _unknown(key: str) -> ConfigError:
    return ConfigError(f"unknown config key {_shown(key)}",
                       hint="see `dmtool config show` for the keys")


def check_value(key: str, value: Any) -> Any:
    """Return the value in its schema type, or raise ConfigError naming the key
    and the range it must be in."""
    s = setting(key)
    if s is None:
        raise _unknown(key)
    if value is None and s.optional:
        return None
    ok: bool
    if s.type is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif s.type is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif s.type is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, s.type)
    if not ok:
        raise ConfigError(f"config key {key!r} must be {_type_name(s.type)}, not {_shown(value)}")
    if s.choices and value not in s.choices:
        raise ConfigError(f"config key {key!r} must be one of {', '.join(s.choices)}, "
                          f"not {_shown(value)}")
    if s.minimum is not None and s.maximum is not None:
        span = f"from {_num(s.minimum)} to {_num(s.maximum)}"
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key {key!r} must be a finite number {span}, not {value!r}")
        if s.ceiling and value > s.maximum:
            raise ConfigError(
                f"config key {key!r} is {value!r}, above its ceiling of {_num(s.maximum)}",
                hint="the ceilings keep outreach personal; they cannot be raised")
        if not s.minimum <= value <= s.maximum:
            raise ConfigError(f"config key {key!r} must be {span}, not {_shown(value)}")
    if s.max_items is not None and len(value) > s.max_items:
        raise ConfigError(f"config key {key!r} takes at most {s.max_items} entries, not {len(value)}")
    if s.max_length is not None:
        for text in value if isinstance(value, list) else [value]:
            if len(text) > s.max_length:
                raise ConfigError(f"config key {key!r} takes at most {s.max_length} characters"
                                  f"{' an entry' if isinstance(value, list) else ''}, "
                                  f"not {len(text)}")
            if not text.isprintable():  # rare: only then is the text looked at closely
                _typed(key, text, one_line=not s.multiline)
    if s.validate is not None:
        try:
            s.validate(value)
        except ValueError as e:
            raise ConfigError(f"config key {key!r}: {e}") from None
    return value


def _typed(key: str, text: str, *, one_line: bool) -> None:
    """Text in a setting is typed text (textnorm.typed): no control characters
    (a line break only where the key allows one), no bytes that were not UTF-8."""
    from dmtool.textnorm import typed

    try:
        typed(text, f"config key {key!r}", one_line=one_line)
    except InputError as e:
        raise ConfigError(e.message, hint=e.hint) from None


UNSET_WORDS = ("none", "off")  # what `config set` takes to unset an optional key
# Compiled when `config set` first uses them, not at every start-up.
_INT_TEXT = r"[+-]?[0-9]+"  # ASCII digits: int() would also take "١" or "1_0"
_FLOAT_TEXT = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?"


def _parse_list(text: str) -> list[Any]:
    """`a, b` is two items; a TOML or JSON list (`["Sam, Acme support"]`) keeps
    commas inside its items. ValueError for a list that does not parse."""
    if not text.lstrip().startswith("["):
        return [p.strip() for p in text.split(",") if p.strip()]
    import json
    import tomllib

    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            raise ValueError(text) from None
    if not isinstance(value, list):
        raise ValueError(text)
    return [v.strip() if isinstance(v, str) else v for v in value
            if not isinstance(v, str) or v.strip()]




def parse_value(key: str, text: str) -> Any:
    """Turn a command-line string into the key's type (for `config set`)."""
    s = setting(key)
    if s is None:
        raise _unknown(key)
    if s.optional and text.strip().lower() in UNSET_WORDS:
        return None
    raw: Any = text
    try:
        if s.type is bool:
            low = text.strip().lower()
            if low not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                raise ValueError
            raw = low in ("true", "yes", "on", "1")
        elif s.type is int:
            if not re.fullmatch(_INT_TEXT, text.strip()) or len(text.strip()) > 30:
                raise ValueError
            raw = int(text)
        elif s.type is float:
            if not re.fullmatch(_FLOAT_TEXT, text.strip()):
                raise ValueError  # nan, inf and the like: numbers in digits only
            raw = float(text)
        elif s.type is list:
            raw = _parse_list(text)
    except ValueError:
        raise ConfigError(f"config key {key!r} must be {_type_name(s.type)}, "
                          f"not {_shown(text)}") from None
    value = check_value(key, raw)
    if key == "display.timezone" and value:
        # Checked against the zone files here, not at every load: loading the
        # config must not import zoneinfo (a bad name in the file is reported
        # when a command first shows a time).
        from dmtool.localtime import UnknownZone, check_zone_name

        try:
            check_zone_name(value)
        except UnknownZone as e:
            raise ConfigError(f"config key {key!r}: {e}",
                              hint="use a zone name such as Asia/Tokyo, Europe/Paris or UTC") \
                from None
    return value


def _blank(text: Any) -> bool:
    return not str(text or "").strip()


def cross_check(values: dict[str, Any], changed: str | None = None) -> str | None:
    """What is wrong between two keys of a whole config (None: nothing). With
    `changed` (the key `config set` changes), say which key to set first."""
    def get(key: str) -> Any:
        s = setting(key)
        return values.get(key, s.default if s else None)

    if get("autoack.enabled") and _blank(get("autoack.text")):
        first = ("set autoack.enabled false first" if changed == "autoack.text"
                 else "set autoack.text first")
        return f"autoack.enabled is true but autoack.text is empty: {first}"
    scores = ("lint.promo_warn_score", "lint.promo_error_score")
    if not any(k in values for k in scores):
        return None  # the defaults agree; and a config without [lint] never imports lint
    warn, error = get(scores[0]), get(scores[1])
    if warn > error:
        first = ("set lint.promo_warn_score first (to that or less)"
                 if changed == "lint.promo_error_score"
                 else "set lint.promo_error_score first (to that or more)")
        return (f"lint.promo_warn_score ({_num(warn)}) is above lint.promo_error_score "
                f"({_num(error)}); a warning must come before the error: {first}")
    return None


def _lint_autoack(values: dict[str, Any]) -> list[str]:
    """The findings that would stop every automatic acknowledgement: lint
    errors, and any promotional wording (policy.decide_autoack)."""
    from dmtool.lint import LintContext, LintSettings, lint

    def get(key: str) -> Any:
        s = setting(key)
        return values.get(key, s.default if s else None)

    names = tuple(str(n) for n in get("identity.names") or ())
    settings = LintSettings(**{k.removeprefix("lint."): get(k) for k in _section("lint")})
    findings = lint(str(get("autoack.text")).strip(),
                    LintContext(first_contact=False, name=None, handle=None, sender_names=names),
                    settings)
    return [f"{f.code}: {f.message}" for f in findings if f.severity == "error" or f.code == "L010"]


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in sorted(flat.items()):
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


class TeamSettings(Record):
    """The settings a team's store holds (checked), and who set each when."""

    __slots__ = ("where", "values", "origin")
    where: str  # the store, for messages
    values: dict[str, Any]
    origin: dict[str, tuple[str, str | None]]  # key -> (set_at, set_by)

    def __init__(self, where: str, values: dict[str, Any],
                 origin: dict[str, tuple[str, str | None]]) -> None:
        self.where = where
        self.values = values
        self.origin = origin


def team_settings(rows: Iterable[tuple[str, str, str, str | None]], where: str) -> TeamSettings:
    """Check the store's (key, JSON value, set_at, set_by) rows as config.toml
    is checked when loaded: a bad value is a ConfigError (exit 4) naming the
    store and the key. A key outside TEAM_PREFIXES is never read from a store."""
    import json

    hint = "an owner sets it again with `dmtool config set KEY VALUE`"
    values: dict[str, Any] = {}
    origin: dict[str, tuple[str, str | None]] = {}
    for key, raw, set_at, set_by in rows:
        if not is_team_key(key):
            continue
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise ConfigError(f"{where}: team setting {_shown(key)} is not a value dmtool wrote",
                              hint=hint) from None
        try:
            values[key] = check_value(key, value)
        except ConfigError as e:
            raise ConfigError(f"{where}: team setting: {e.message}", hint=e.hint or hint) from None
        origin[key] = (set_at, set_by)
    problem = cross_check(values)
    if problem:
        raise ConfigError(f"{where}: team settings: {problem}", hint=hint)
    return TeamSettings(where, values, origin)


class Config:
    __slots__ = ("path", "values", "team_loader", "_team", "_team_loaded")

    def __init__(self, path: Path, values: dict[str, Any],
                 team_loader: Callable[[], TeamSettings | None] | None = None) -> None:
        self.path = path
        self.values = values  # only what the file sets, flat dotted keys
        # On a team store the team keys come from the store: this loads them
        # (None: no team), on the first read of a team key, so a command that
        # reads none never opens the store for it (appstate sets it).
        self.team_loader = team_loader
        self._team: TeamSettings | None = None
        self._team_loaded = False

    def team(self) -> TeamSettings | None:
        """The team's settings, when the store has members; None otherwise."""
        if not self._team_loaded:
            self._team = self.team_loader() if self.team_loader is not None else None
            self._team_loaded = True
        return self._team

    def forget_team(self) -> None:
        """Read the team's settings again at the next use (they changed)."""
        self._team_loaded = False
        self._team = None

    def in_force(self) -> dict[str, Any]:
        """The values set somewhere (defaults aside): the file's, except that on
        a team store the team keys are the store's."""
        team = self.team()
        if team is None:
            return self.values
        return {**{k: v for k, v in self.values.items() if not is_team_key(k)}, **team.values}

    def source(self, key: str) -> str:
        """Where a key's value comes from: team (the store), config.toml or default."""
        team = self.team() if is_team_key(key) else None
        if team is not None:
            return "team" if key in team.values else "default"
        return "config.toml" if key in self.values else "default"

    def ignored(self) -> dict[str, Any]:
        """The file's values for team keys, which a team store overrides (empty
        when the store has no team)."""
        if not any(is_team_key(k) for k in self.values) or self.team() is None:
            return {}
        return {k: v for k, v in self.values.items() if is_team_key(k)}

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path, {})
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}") from None
        from dmtool.tomlread import loads

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text") from None
        data = loads(text)  # the usual file, without tomllib's start-up cost
        if data is None:
            import tomllib

            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"{path} is not valid TOML: {e}",
                                  hint="fix the file or remove it to start from defaults") from None
        values = {}
        for key, value in _flatten(data).items():
            try:
                values[key] = check_value(key, value)
            except ConfigError as e:
                raise ConfigError(f"{path}: {e.message}", hint=e.hint) from None
        problem = cross_check(values)
        if problem:
            raise ConfigError(f"{path}: {problem}") from None
        return cls(path, values)

    def get(self, key: str) -> Any:
        s = setting(key)
        if s is None:
            raise ConfigError(f"unknown config key {key!r}", hint="see `dmtool config show` for the keys")
        if is_team_key(key):
            team = self.team()
            if team is not None:
                return team.values.get(key, s.default)
        return self.values.get(key, s.default)

    def effective(self) -> dict[str, Any]:
        values = self.in_force()
        return {k: values.get(k, s.default) for k, s in schema().items()}

    def change(self, key: str, text: str) -> Any:
        """The value `config set KEY TEXT` would give the key, checked against
        its range and the rest of the settings in force. A value that does not
        fit is bad input (E_INPUT); nothing is written."""
        try:
            value = parse_value(key, text)
        except ConfigError as e:
            raise InputError(e.message, hint=e.hint) from None
        # A team key is checked against the team's settings on a team store;
        # a machine's own key against config.toml (the store is not opened).
        values = {**(self.in_force() if is_team_key(key) else self.values), key: value}
        problem = cross_check(values, key)
        if problem:
            raise InputError(problem)
        # Lint the text when it is set or switched on (never when switching off).
        if (key == "autoack.text" or (key == "autoack.enabled" and value)) \
                and not _blank(values.get("autoack.text")):
            refused = _lint_autoack(values)
            if refused:
                raise InputError(
                    "autoack.text would be refused at every automatic acknowledgement: "
                    + "; ".join(refused),
                    hint="an acknowledgement must not promote or link; reword it",
                    details=[{"finding": f} for f in refused])
        return value

    def set(self, key: str, text: str) -> Any:
        """Change one key of config.toml from command-line text (see change)."""
        value = self.change(key, text)
        if value is None:  # an optional key unset: TOML has no null, so it leaves the file
            self.values.pop(key, None)
        else:
            self.values[key] = value
        self.save()
        return value

    def save(self) -> None:
        import tomli_w

        from dmtool.errors import write_failed

        tmp = self.path.with_suffix(".toml.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    tomli_w.dump(_nest(self.values), f)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):  # never leave a half-written file behind
                    tmp.unlink()
                raise
        except OSError as e:
            raise write_failed(self.path, e, what="config not saved: ") from None

    @property
    def backend(self) -> str:
        return str(self.get("backend"))

    def policy(self) -> PolicySettings:
        from dmtool.settings import PolicySettings

        # Straight from the validated values: no schema walk, so commands that
        # only need the policy do not import lint at start-up.
        return PolicySettings(**{k.removeprefix("policy."): v for k, v in self.in_force().items()
                                 if k.startswith("policy.")})

    def lint(self) -> LintSettings:
        from dmtool.settings import LintSettings

        return LintSettings(**{k.removeprefix("lint."): v for k, v in self.in_force().items()
                               if k.startswith("lint.")})
