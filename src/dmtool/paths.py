"""Where dmtool keeps its files: platformdirs' user dirs, or all under $DMTOOL_HOME."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dmtool.errors import UsageError
from dmtool.record import Record

APP = "dmtool"
DEFAULT_PROFILE = "default"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_PROFILE_CHARS = frozenset(_ALNUM + "_.-")


def _valid_name(name: str) -> bool:
    """1 to 64 ASCII letters, digits, '_', '.' or '-', the first a letter or a
    digit (a set check: a regex would be compiled at every start)."""
    return 0 < len(name) <= 64 and name[0] in _ALNUM and _PROFILE_CHARS.issuperset(name)


def check_profile_name(name: str) -> str:
    if not name:
        raise UsageError("the profile name is empty",
                         hint=f"leave --profile out for the {DEFAULT_PROFILE!r} profile, or name one")
    if not _valid_name(name):
        raise UsageError(
            f"invalid profile name {name!r}",
            hint="use letters, digits, '.', '_' or '-' (at most 64 characters)",
        )
    return name


def roots(environ: Mapping[str, str] | None = None) -> tuple[Path, Path, Path]:
    """The config, data and state folders that hold one folder per profile."""
    env = os.environ if environ is None else environ
    home = env.get("DMTOOL_HOME")
    if home:
        root = Path(home).expanduser()
        return root / "config", root / "data", root / "state"
    import platformdirs

    return (Path(platformdirs.user_config_dir(APP)), Path(platformdirs.user_data_dir(APP)),
            Path(platformdirs.user_state_dir(APP)))


def list_profiles(environ: Mapping[str, str] | None = None) -> list[str]:
    """The profiles that exist (see Paths.exists), `default` first."""
    config, data, _ = roots(environ)
    found = {DEFAULT_PROFILE}
    for root, name in ((config, "config.toml"), (data, "dmtool.db")):
        try:
            entries = list(root.iterdir())
        except OSError:  # no folder yet, or not readable: nothing there to list
            continue
        found.update(d.name for d in entries
                     if _valid_name(d.name) and (d / name).exists())
    return [DEFAULT_PROFILE, *sorted(found - {DEFAULT_PROFILE})]


class Paths(Record):
    """The folders of one profile. Nothing is created until ensure() is called."""

    __slots__ = ("profile", "config_dir", "data_dir", "state_dir", "sandbox_path")
    profile: str
    config_dir: Path
    data_dir: Path
    state_dir: Path
    sandbox_path: Path | None  # DMTOOL_SANDBOX_FILE: one fake X for a team's store

    def __init__(self, profile: str, config_dir: Path, data_dir: Path, state_dir: Path,
                 sandbox_path: Path | None = None) -> None:
        self.profile = profile
        self.config_dir = config_dir
        self.data_dir = data_dir
        self.state_dir = state_dir
        self.sandbox_path = sandbox_path

    @classmethod
    def resolve(cls, profile: str, environ: Mapping[str, str] | None = None) -> Paths:
        check_profile_name(profile)
        config, data, state = roots(environ)
        env = os.environ if environ is None else environ
        shared = env.get("DMTOOL_SANDBOX_FILE")
        return cls(profile, config / profile, data / profile, state / profile,
                   Path(shared).expanduser() if shared else None)

    def exists(self) -> bool:
        """A profile exists once it has a config.toml or a store; `default`
        always does. Nothing else (an empty folder, a lock) makes one."""
        return (self.profile == DEFAULT_PROFILE or self.config_file.exists()
                or self.db_file.exists())

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def credentials_file(self) -> Path:
        return self.config_dir / "credentials.toml"

    @property
    def db_file(self) -> Path:
        return self.data_dir / "dmtool.db"

    @property
    def sandbox_file(self) -> Path:
        return self.sandbox_path or self.data_dir / "sandbox.json"

    # The store's locks sit beside the store, not in this home's state folder:
    # members whose homes share one SQLite store (docs/team.md) must meet the
    # same send and sync locks.
    @property
    def send_lock_file(self) -> Path:
        return self.data_dir / "send.lock"

    @property
    def sync_lock_file(self) -> Path:
        return self.data_dir / "sync.lock"

    def ensure(self) -> None:
        """Create the profile's missing folders, readable by the owner only.
        Folders that exist are left as they are: their owner may have set
        them tighter, and they may be read-only or someone else's (reading
        commands still work there; a write says where it could not write)."""
        from dmtool.errors import write_failed

        for d in (self.config_dir, self.data_dir, self.state_dir):
            if d.is_dir():
                continue
            try:
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(d, 0o700)  # mkdir's mode passes through the umask
            except OSError as e:
                raise write_failed(d, e) from None

    def as_dict(self) -> dict[str, str]:
        return {
            "profile": self.profile,
            "config_dir": str(self.config_dir),
            "data_dir": str(self.data_dir),
            "state_dir": str(self.state_dir),
            "config_file": str(self.config_file),
            "credentials_file": str(self.credentials_file),
            "db_file": str(self.db_file),
        }
