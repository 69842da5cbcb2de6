"""config.toml: a typed schema of dotted keys, read with tomllib, written with tomli-w.

Unknown keys and wrong types are refused with the key named, both when a value
is set and when the file is loaded, so a typo never silently changes behaviour.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmtool.errors import ConfigError

if TYPE_CHECKING:
    from dmtool.lint import LintSettings
    from dmtool.policy import PolicySettings


@dataclass(frozen=True)
class Setting:
    key: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None  # a ceiling: higher values are refused


_STATIC: tuple[Setting, ...] = (
    Setting("backend", str, "x", "where X calls go: 'x' (the real API) or 'sandbox'",
            choices=("x", "sandbox")),
    Setting("identity.names", list, [], "names you sign DMs with (first contacts must say who writes)"),
    Setting("autoack.enabled", bool, False, "send one acknowledgement when a new conversation opens"),
    Setting("autoack.text", str, "", "the acknowledgement text (no promotion, no links)"),
    Setting("sync.first_page_size", int, 2, "DM events asked for in sync's first request",
            minimum=1, maximum=100),
    Setting("sync.max_page_size", int, 100, "largest DM events page sync asks for",
            minimum=1, maximum=100),
    Setting("store.url", str, "",
            "the store: empty for this profile's SQLite file, or postgresql://USER@HOST/DB "
            "(docs/team.md); DMTOOL_DATABASE_URL overrides it"),
    Setting("sync.public_every_minutes", int, 15,
            "check mentions and your replies at most this often (sync --public forces it)",
            minimum=0, maximum=1440),
)


def _from_dataclass(section: str, cls: type, ceilings: dict[str, float]) -> list[Setting]:
    out = []
    for f in dataclasses.fields(cls):
        default = f.default
        typ = type(default)
        out.append(
            Setting(f"{section}.{f.name}", typ, default, str(f.metadata.get("help", "")),
                    minimum=0, maximum=ceilings.get(f.name))
        )
    return out


@cache
def _section(name: str) -> dict[str, Setting]:
    """The keys of one section. Policy and lint keys come from their settings
    dataclasses, imported only when that section is asked for: loading a
    config.toml with no [lint] table never imports lint."""
    if name == "policy":
        from dmtool.policy import CEILINGS, PolicySettings

        settings = _from_dataclass("policy", PolicySettings, dict(CEILINGS))
    elif name == "lint":
        from dmtool.lint import LintSettings

        settings = _from_dataclass("lint", LintSettings, {})
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


def check_value(key: str, value: Any) -> Any:
    """Return the value in its schema type, or raise ConfigError naming the key."""
    s = setting(key)
    if s is None:
        raise ConfigError(f"unknown config key {key!r}", hint="see `dmtool config show` for the keys")
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
        raise ConfigError(f"config key {key!r} must be {_type_name(s.type)}, not {value!r}")
    if s.choices and value not in s.choices:
        raise ConfigError(f"config key {key!r} must be one of {', '.join(s.choices)}, not {value!r}")
    if s.minimum is not None and value < s.minimum:
        raise ConfigError(f"config key {key!r} must be at least {s.minimum:g}, not {value!r}")
    if s.maximum is not None and value > s.maximum:
        raise ConfigError(
            f"config key {key!r} is {value!r}, above its ceiling of {s.maximum:g}",
            hint="the ceilings keep outreach personal; they cannot be raised",
        )
    if key.startswith("policy."):
        # The policy knows its own bounds (e.g. similarity_threshold <= 1).
        from dmtool.policy import validate_settings

        problems = validate_settings({key.removeprefix("policy."): value})
        if problems:
            raise ConfigError(f"config key {key!r}: {problems[0]}")
    return value


def parse_value(key: str, text: str) -> Any:
    """Turn a command-line string into the key's type (for `config set`)."""
    s = setting(key)
    if s is None:
        raise ConfigError(f"unknown config key {key!r}", hint="see `dmtool config show` for the keys")
    raw: Any = text
    try:
        if s.type is bool:
            low = text.strip().lower()
            if low not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                raise ValueError
            raw = low in ("true", "yes", "on", "1")
        elif s.type is int:
            raw = int(text)
        elif s.type is float:
            raw = float(text)
        elif s.type is list:
            raw = [p.strip() for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"config key {key!r} must be {_type_name(s.type)}, not {text!r}") from None
    return check_value(key, raw)


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


@dataclass
class Config:
    path: Path
    values: dict[str, Any]  # only what the file sets, flat dotted keys

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path, {})
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}",
                              hint="fix the file or remove it to start from defaults") from None
        values = {}
        for key, value in _flatten(data).items():
            try:
                values[key] = check_value(key, value)
            except ConfigError as e:
                raise ConfigError(f"{path}: {e.message}", hint=e.hint) from None
        return cls(path, values)

    def get(self, key: str) -> Any:
        s = setting(key)
        if s is None:
            raise ConfigError(f"unknown config key {key!r}", hint="see `dmtool config show` for the keys")
        return self.values.get(key, s.default)

    def effective(self) -> dict[str, Any]:
        return {k: self.values.get(k, s.default) for k, s in schema().items()}

    def set(self, key: str, text: str) -> Any:
        value = parse_value(key, text)
        self.values[key] = value
        self.save()
        return value

    def save(self) -> None:
        import tomli_w

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".toml.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            tomli_w.dump(_nest(self.values), f)
        os.replace(tmp, self.path)

    @property
    def backend(self) -> str:
        return str(self.get("backend"))

    def policy(self) -> PolicySettings:
        from dmtool.policy import PolicySettings

        # Straight from the validated values: no schema walk, so commands that
        # only need the policy do not import lint at start-up.
        return PolicySettings(**{k.removeprefix("policy."): v for k, v in self.values.items()
                                 if k.startswith("policy.")})

    def lint(self) -> LintSettings:
        from dmtool.lint import LintSettings

        return LintSettings(**{k.removeprefix("lint."): v for k, v in self.values.items()
                               if k.startswith("lint.")})
