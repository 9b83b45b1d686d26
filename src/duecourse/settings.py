"""Settings, read from the environment and validated once, in bootstrap (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path  # where the SQLite file, the data key, rejects and exports live by default
    data_key_path: Path
    strategy_path: Path
    rules_path: Path  # the rule packs (rules/README.md)
    messages_path: Path  # message texts and the lender's identity (templates/messages.yaml)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        data_dir = Path(env.get("DUECOURSE_HOME", "var")).resolve()
        url = env.get("DUECOURSE_DATABASE_URL") or f"sqlite:///{data_dir / 'duecourse.db'}"
        return cls(
            database_url=url,
            data_dir=data_dir,
            data_key_path=Path(env.get("DUECOURSE_DATA_KEY_FILE", str(data_dir / "data.key"))),
            strategy_path=Path(env.get("DUECOURSE_STRATEGY", "strategies/default.yaml")),
            rules_path=Path(env.get("DUECOURSE_RULES", "rules")),
            messages_path=Path(env.get("DUECOURSE_MESSAGES", "templates/messages.yaml")),
        )
