"""Where dmtool keeps its files: platformdirs' user dirs, or all under $DMTOOL_HOME."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dmtool.errors import UsageError

APP = "dmtool"
DEFAULT_PROFILE = "default"
_PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_profile_name(name: str) -> str:
    if not _PROFILE_RE.match(name):
        raise UsageError(
            f"invalid profile name {name!r}",
            hint="use letters, digits, '.', '_' or '-' (at most 64 characters)",
        )
    return name


@dataclass(frozen=True)
class Paths:
    """The folders of one profile. Nothing is created until ensure() is called."""

    profile: str
    config_dir: Path
    data_dir: Path
    state_dir: Path
    sandbox_path: Path | None = None  # DMTOOL_SANDBOX_FILE: one fake X for a team's store

    @classmethod
    def resolve(cls, profile: str, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        check_profile_name(profile)
        home = env.get("DMTOOL_HOME")
        if home:
            root = Path(home).expanduser()
            config, data, state = root / "config", root / "data", root / "state"
        else:
            import platformdirs

            config = Path(platformdirs.user_config_dir(APP))
            data = Path(platformdirs.user_data_dir(APP))
            state = Path(platformdirs.user_state_dir(APP))
        shared = env.get("DMTOOL_SANDBOX_FILE")
        return cls(profile, config / profile, data / profile, state / profile,
                   Path(shared).expanduser() if shared else None)

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

    @property
    def send_lock_file(self) -> Path:
        return self.state_dir / "send.lock"

    @property
    def sync_lock_file(self) -> Path:
        return self.state_dir / "sync.lock"

    def ensure(self) -> None:
        """Create the profile's folders, readable by the owner only."""
        for d in (self.config_dir, self.data_dir, self.state_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)

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
