"""Reading a letter back as a person or a scanner would: poppler's text, fonts and page images, zbar's QR reader."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

# The cut letter face is made once per machine (up to a minute) and reused by every later test run.
FONT_CACHE = Path(tempfile.gettempdir()) / "duecourse-test-letter-fonts"


def pdf_text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    """The words of the PDF, or of its pages `first` to `last` (1-based, inclusive)."""
    pages = [] if first is None else ["-f", str(first), "-l", str(last if last is not None else first)]
    return subprocess.run(
        ["pdftotext", "-layout", *pages, str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def pdf_fonts(pdf: Path) -> list[dict[str, str]]:
    """pdffonts rows as dicts (name, type, emb, sub, uni)."""
    out = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout.splitlines()
    rows = []
    for line in out[2:]:
        parts = line.split()
        # name, type (1-3 words), encoding, emb, sub, uni, object, id: read from the right
        rows.append({"name": parts[0], "emb": parts[-5], "sub": parts[-4], "uni": parts[-3]})
    return rows


def qr_codes(pdf: Path, workdir: Path, first: int | None = None, last: int | None = None) -> list[str]:
    """Every QR code zbarimg finds on the letter's pages (or pages `first` to `last`) rendered at 150 dpi."""
    prefix = workdir / pdf.stem
    pages = [] if first is None else ["-f", str(first), "-l", str(last if last is not None else first)]
    for old in workdir.glob(f"{pdf.stem}-*.png"):
        old.unlink()  # pages of an earlier call on the same file
    subprocess.run(["pdftoppm", "-png", "-r", "150", *pages, str(pdf), str(prefix)], check=True)
    found: list[str] = []
    for image in sorted(workdir.glob(f"{pdf.stem}-*.png")):
        result = subprocess.run(["zbarimg", "-q", "--raw", str(image)], capture_output=True, text=True)
        if result.returncode == 0:  # 4 means no symbol on this page
            found += result.stdout.split()
    return found
