"""Letters.configured puts templates, batches and the cut face where the settings say."""

from __future__ import annotations

import os
import shutil
from datetime import time
from pathlib import Path

from duecourse.adapters.channels.letters import letter_face
from duecourse.adapters.crypto import FieldCipher
from duecourse.domain.verification import CodeSigner
from duecourse.services.letters import Letters
from duecourse.services.messages import MessageCatalogue
from duecourse.settings import Settings
from duecourse.strategy import load_strategy
from tests.unit.letters.pdf_tools import FONT_CACHE, pdf_fonts
from tests.unit.letters.samples import written

ROOT = Path(__file__).resolve().parents[3]


def test_configured_from_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "DUECOURSE_HOME": str(tmp_path / "home"),
            "DUECOURSE_MESSAGES": str(ROOT / "templates" / "messages.yaml"),
            "DUECOURSE_PUBLIC_URL": "https://pay.example.cn/",
        }
    )
    # The face is cut once per machine; give this deployment the one the other tests made (same source, same name).
    cached = letter_face(FONT_CACHE)
    (settings.data_dir / "fonts").mkdir(parents=True)
    shutil.copy(cached, settings.data_dir / "fonts" / cached.name)

    letters = Letters.configured(
        settings,
        FieldCipher.generate(),
        CodeSigner(os.urandom(32)),
        MessageCatalogue.load(settings.messages_path),
        load_strategy(ROOT / "strategies" / "default.yaml"),
        (time(9), time(18)),
        workers=2,
    )
    assert letters.public_url == "https://pay.example.cn"
    assert letters.letters_dir == settings.data_dir / "letters"
    assert letters.renderer.directory == ROOT / "templates" / "letters"
    assert letters.renderer.workers == 2
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(letters.renderer.render_pdf(written("zh")))
    assert [f["name"].split("+")[-1] for f in pdf_fonts(pdf)] == ["DueCourse-Letter-SC"]
    assert sorted(p.name for p in (settings.data_dir / "fonts").iterdir()) == [cached.name]  # nothing rebuilt
