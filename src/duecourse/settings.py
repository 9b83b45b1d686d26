"""Settings, read from the environment and validated once, in bootstrap (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from duecourse.domain.errors import SettingsError


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path  # where the SQLite file, the data key, rejects and exports live by default
    data_key_path: Path
    strategy_path: Path
    rules_path: Path  # the rule packs (rules/README.md)
    policy_path: Path  # the lender's house policies: plans.yaml, visits.yaml
    messages_path: Path  # message texts and the lender's identity (templates/messages.yaml)
    verification_key_path: Path  # the secret that signs verification codes (created on first use)
    public_url: str  # where the public /verify page is served; printed in QR codes and messages
    smtp_url: str | None  # e-mail: smtp://host:port (smtps:// for TLS), credentials in the URL if needed
    mail_from: str
    sms_url: str | None  # the SMS gateway's base URL (adapters/channels/README.md)
    sms_api_key: str | None
    sms_sender: str
    push_url: str | None  # the app-push webhook
    push_secret: str | None  # signs push webhook bodies
    # A fixed "now" (ISO 8601 with its UTC offset) for every command: replaying a day, demonstrations, tests.
    # Unset in production, where the clock is the machine's.
    fixed_now: datetime | None = None

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
            policy_path=Path(env.get("DUECOURSE_POLICY", "policy")),
            messages_path=Path(env.get("DUECOURSE_MESSAGES", "templates/messages.yaml")),
            verification_key_path=Path(env.get("DUECOURSE_VERIFY_KEY_FILE", str(data_dir / "verify.key"))),
            public_url=env.get("DUECOURSE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            smtp_url=env.get("DUECOURSE_SMTP_URL") or None,
            mail_from=env.get("DUECOURSE_MAIL_FROM", "collections@example.com"),
            sms_url=env.get("DUECOURSE_SMS_URL") or None,
            sms_api_key=env.get("DUECOURSE_SMS_API_KEY") or None,
            sms_sender=env.get("DUECOURSE_SMS_SENDER", "DueCourse"),
            push_url=env.get("DUECOURSE_PUSH_URL") or None,
            push_secret=env.get("DUECOURSE_PUSH_SECRET") or None,
            fixed_now=_instant(env.get("DUECOURSE_NOW") or None),
        )


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"DUECOURSE_NOW: {text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise SettingsError(f"DUECOURSE_NOW: {text!r} needs its UTC offset (e.g. 2026-12-01T10:00:00+08:00)")
    return value
