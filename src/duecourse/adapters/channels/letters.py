"""Letters on paper: what a written notice and a pre-visit notice print, rendered to PDF and written as a print batch.

The seed asks for a written notice that states the coming measure and its reason before anything serious
happens, and a notice before any door visit that tells the debtor who will come and how to check they are
genuine (issue 4, points 2 and 4). Everything printed is in the frozen dataclasses below; the services
build them from the book (`services/letters.py`), this module only renders and files them.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import functools
import gc
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from datetime import date, time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import ClassVar, Final

import jinja2
import markupsafe
import numpy as np
import qrcode  # type: ignore[import-untyped]
import qrcode.constants  # type: ignore[import-untyped]
import weasyprint  # type: ignore[import-untyped]  # no stubs
from fontTools import subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from PIL import Image
from weasyprint.text.fonts import FontConfiguration  # type: ignore[import-untyped]

from duecourse.domain.dates import MONTHS
from duecourse.domain.money import format_money
from duecourse.domain.verification import display

LANGUAGES: Final = ("zh", "en")

# What the written notice announces (the ladder's next serious step for this loan), by step kind.
MEASURES: Final = ("calls", "door_visit", "legal_referral", "outsourcing", "repayment_plan")

# Letter and batch ids name files and folders in the print room.
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")

# Why a door visit is planned (the eligibility facts of issue 4, point 5), printed on the pre-visit notice.
VISIT_REASONS: Final = ("contact_failed", "promises_broken", "no_reply_to_notice")


@dataclass(frozen=True)
class LenderIdentity:
    """The lender as printed, in the letter's language, with its only official channels."""

    name: str
    address: str | None  # postal address for written disputes and complaints; None when not configured
    hotline: str
    official_account: str  # the only account payments may go to
    website: str  # the official site that serves /verify (settings.public_url)


@dataclass(frozen=True)
class Debtor:
    ref: str  # borrower_id: what a manifest names, never the name
    name: str
    postal_address: str


@dataclass(frozen=True)
class Debt:
    """What is due as of the letter's date, by component, in integer minor units of `currency`."""

    loan_id: str
    currency: str
    principal: int
    interest: int
    penalty: int
    fees: int
    oldest_due_date: date
    days_past_due: int

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.penalty + self.fees


@dataclass(frozen=True)
class ComingMeasure:
    kind: str  # one of MEASURES
    not_before: date | None  # the earliest day it may happen; None when it is not dated


@dataclass(frozen=True)
class Verification:
    """The letter's own code (canonical, 16 characters) and the page where anyone can check it."""

    code: str
    public_url: str  # settings.public_url, without a trailing slash

    @property
    def display(self) -> str:
        return display(self.code)

    @property
    def url(self) -> str:
        """What the QR code encodes and the letter prints: the /verify page with the code filled in."""
        return f"{self.public_url}/verify?code={self.display}"


@dataclass(frozen=True)
class Visitor:
    name: str
    badge: str


@dataclass(frozen=True)
class PlannedVisit:
    """The visit facts a pre-visit notice prints; H4's visit planning owns them and passes them in."""

    visit_id: str
    reasons: tuple[str, ...]  # among VISIT_REASONS
    window_start: date
    window_end: date
    daily_from: time  # visits happen in daytime slots on working days, local time
    daily_until: time
    visitors: tuple[Visitor, ...]


@dataclass(frozen=True)
class WrittenNotice:
    """A `letter.*` ladder step: the debt, the coming measure and why, the official ways to pay, plan, dispute or
    complain, and the code that proves the letter is genuine."""

    letter_id: str
    template: str  # the ladder template, e.g. letter.written_notice
    action_key: int | None  # the outbox row it answers
    language: str  # zh | en
    issued_on: date
    lender: LenderIdentity
    debtor: Debtor
    debt: Debt
    measure: ComingMeasure
    verification: Verification

    kind: ClassVar[str] = "written_notice"

    def __post_init__(self) -> None:
        _check_letter(self.letter_id, self.language)
        if self.measure.kind not in MEASURES:
            raise ValueError(f"unknown coming measure {self.measure.kind!r}; known: {', '.join(MEASURES)}")


@dataclass(frozen=True)
class PreVisitNotice:
    """The notice a debtor receives before a door visit: all a written notice says, plus why and when the visit is
    planned, who will come, how to check the notice and the visitors, and the debtor's rights at the door."""

    letter_id: str
    language: str
    issued_on: date
    lender: LenderIdentity
    debtor: Debtor
    debt: Debt
    visit: PlannedVisit
    verification: Verification  # purpose "notice", reference "visit:<visit_id>"
    action_key: int | None = None

    kind: ClassVar[str] = "pre_visit_notice"

    def __post_init__(self) -> None:
        _check_letter(self.letter_id, self.language)
        visit = self.visit
        unknown = set(visit.reasons) - set(VISIT_REASONS)
        if not visit.reasons or unknown:
            raise ValueError(f"visit reasons must be among {', '.join(VISIT_REASONS)}: got {visit.reasons!r}")
        if visit.window_end < visit.window_start or visit.daily_until <= visit.daily_from:
            raise ValueError("the visit window must not end before it starts")
        if not visit.visitors:
            raise ValueError("a pre-visit notice names who will come")


Letter = WrittenNotice | PreVisitNotice


def _check_letter(letter_id: str, language: str) -> None:
    if not _SAFE_NAME.fullmatch(letter_id):
        raise ValueError(f"letter id {letter_id!r} is not a safe file name")
    if language not in LANGUAGES:
        raise ValueError(f"letters are printed in {' or '.join(LANGUAGES)}, not {language!r}")


def long_date(day: date, language: str) -> str:
    """2026年3月31日 (zh) or March 31, 2026 (en): the same forms as the ladder's messages."""
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def qr_data_uri(text: str) -> str:
    """A PNG QR code of `text` as a data: URI, one pixel per module (the page scales it, pixelated, to print size).

    Medium error correction survives a crease or a smudge; the best mask is kept (it is what makes a phone read a
    worn print first time). The PNG is made from the module matrix in one go: qrcode's own image drawing, module
    by module, took longer than the whole code."""
    code = _QrCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    dark = np.array(code.get_matrix(), dtype=bool)  # with the quiet zone
    png = io.BytesIO()
    Image.fromarray(np.where(dark, 0, 255).astype(np.uint8)).save(png, format="PNG")
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")


class _QrCode(qrcode.QRCode):
    """qrcode's QR code, the same symbol made faster: the data placed into its modules in one step from the order in
    which ISO/IEC 18004 §7.7.3 places them (found once per symbol size), and the mask chosen by the same penalty
    rules (§7.8.3: runs, blocks, finder-like patterns, balance) scored for the eight masks at once with numpy. qrcode
    places the data module by module and scores it in Python once per mask, which took most of a letter's QR time."""

    _data_region: np.ndarray | None = None

    def map_data(self, data: bytes, mask_pattern: int) -> None:
        # The modules still empty when the data is placed are the data region (the rest are function patterns).
        self._data_region = np.array([[module is None for module in row] for row in self.modules])
        rows, cols = _placement(self._data_region.tobytes(), len(self.modules))
        bits = np.unpackbits(np.asarray(data, dtype=np.uint8))[: len(rows)]  # most significant bit first
        dark = np.zeros(len(rows), dtype=bool)
        dark[: len(bits)] = bits  # the remainder modules after the data stay light before masking
        dark ^= _masks(len(self.modules))[mask_pattern][rows, cols]
        for row, col, module in zip(rows.tolist(), cols.tolist(), dark.tolist(), strict=True):
            self.modules[row][col] = module

    def best_mask_pattern(self) -> int:
        self.makeImpl(True, 0)  # format information left light, as qrcode scores it
        assert self._data_region is not None
        placed = np.array(self.modules, dtype=bool)
        flips = _masks(len(placed)) ^ _masks(len(placed))[0]
        return int(np.argmin(_penalties(placed ^ (flips & self._data_region))))


@functools.cache
def _placement(region: bytes, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The data modules (True in the size x size `region`) in the order the data's bits fill them: two-module columns
    from the right, upwards then downwards in turn, skipping the vertical timing pattern (ISO/IEC 18004 §7.7.3)."""
    free = np.frombuffer(region, dtype=bool).reshape(size, size)
    order = []
    upwards = True
    for right in range(size - 1, 0, -2):
        if right <= 6:
            right -= 1  # the vertical timing pattern is column 6
        for row in range(size - 1, -1, -1) if upwards else range(size):
            order += [(row, col) for col in (right, right - 1) if free[row, col]]
        upwards = not upwards
    rows, cols = np.array(order).T
    return rows, cols


@functools.cache
def _masks(size: int) -> np.ndarray:
    """The eight data masks of ISO/IEC 18004 (table 10) over a size x size symbol: True where a module is inverted."""
    i, j = np.indices((size, size))
    return np.stack(
        [
            (i + j) % 2 == 0,
            i % 2 == 0,
            j % 3 == 0,
            (i + j) % 3 == 0,
            (i // 2 + j // 3) % 2 == 0,
            (i * j) % 2 + (i * j) % 3 == 0,
            ((i * j) % 2 + (i * j) % 3) % 2 == 0,
            ((i * j) % 3 + (i + j) % 2) % 2 == 0,
        ]
    )


# Finder-like runs of 11 modules (dark-light-dark-dark-dark-light-dark and four light), read as 11-bit numbers.
_FINDER_LIKE: Final = (0b10111010000, 0b00001011101)


def _penalties(symbols: np.ndarray) -> np.ndarray:
    """The penalty of each of the (masks, size, size) symbols, as qrcode's `util.lost_point` counts it."""
    masks, size, _ = symbols.shape
    both = np.concatenate([symbols, symbols.transpose(0, 2, 1)], axis=1)  # rows, then columns as rows
    # Runs of five or more modules of one colour: 3 + (length - 5) each. A sentinel column ends every line.
    lines = np.concatenate([both.astype(np.int8), np.full((masks, 2 * size, 1), 2, np.int8)], axis=2).ravel()
    starts = np.flatnonzero(np.concatenate([[True], lines[1:] != lines[:-1]]))
    lengths = np.diff(np.append(starts, len(lines)))
    long = lengths >= 5  # the sentinel's runs are one module long
    runs = np.bincount(starts[long] // (2 * size * (size + 1)), weights=lengths[long] - 2, minlength=masks)
    # 2x2 blocks of one colour: 3 each.
    top, bottom = symbols[:, :-1, :], symbols[:, 1:, :]
    blocks = (
        (top[:, :, :-1] == top[:, :, 1:]) & (top[:, :, 1:] == bottom[:, :, :-1]) & (top[:, :, 1:] == bottom[:, :, 1:])
    )
    # 1:1:3:1:1 dark-light-dark-light-dark with four light modules before or after, in a row or column: 40 each.
    # Every run of 11 modules in a line is read as a number, first module the highest bit.
    windows = np.zeros((masks, 2 * size, size - 10), dtype=np.int16)
    for k in range(11):
        windows |= both[:, :, k : size - 10 + k].astype(np.int16) << (10 - k)
    finder = sum((windows == pattern).sum(axis=(1, 2)) for pattern in _FINDER_LIKE)
    # Balance: 10 for every full 5 % the dark share is away from half.
    dark = symbols.sum(axis=(1, 2)) * 100 / size**2
    balance = (np.abs(dark - 50) // 5) * 10
    return runs + 3 * blocks.sum(axis=(1, 2)) + 40 * finder + balance


# The face letters are set in. The system's Noto Sans CJK SC has 65,535 glyphs, and WeasyPrint's subset keeps glyph
# ids, so every letter embedded a font sized for all of them: 150 KB a letter and a third of the render time. Cut
# once to GB 2312 (its 6,763 hanzi and symbols) with Latin and punctuation, the same glyphs make a 40 KB letter at
# two thirds of the CPU. Any other character falls back to the full face (the family list in the stylesheet), so
# a rare character in a name still prints; only that letter then embeds a second face.
SYSTEM_FACE: Final = "Noto Sans CJK SC"
LETTER_FACE: Final = "DueCourse Letter SC"
_FACE_VERSION: Final = "1"  # bump when the character set or the cut changes


def letter_face(cache: Path) -> Path:
    """The cut letter face in `cache`, made on first use (a few seconds to a minute) and reused after."""
    source, index = _system_face(SYSTEM_FACE)
    stat = os.stat(source)
    key = hashlib.sha256(f"{_FACE_VERSION}|{source}|{index}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache / f"letter-sc-{key[:16]}.otf"
    if target.exists():
        return target
    font = TTFont(source, fontNumber=index)
    options = subset.Options()
    options.layout_features = []  # horizontal CJK and plain Latin need none; dropping them keeps the subset small
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_letter_characters())
    subsetter.subset(font)
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):
            record.string = LETTER_FACE
        elif record.nameID == 6:
            record.string = LETTER_FACE.replace(" ", "")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, suffix=".partial", delete=False) as out:
        font.save(out)
    os.replace(out.name, target)  # two processes building at once both finish; either file is the same face
    return target


def _system_face(family: str) -> tuple[str, int]:
    found = subprocess.run(
        ["fc-match", "-f", "%{family}|%{file}|%{index}", f"{family}:style=Regular"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    families, file, index = found.rsplit("|", 2)
    if family not in families.split(","):
        raise FileNotFoundError(f"font {family!r} is not installed (Debian: fonts-noto-cjk); fontconfig offers {found}")
    return file, int(index)


def _letter_characters() -> set[int]:
    """Printable Latin, general and CJK punctuation, full-width forms, and every character of GB 2312."""
    ranges = [(0x20, 0x250), (0x2000, 0x2070), (0x2100, 0x2200), (0x3000, 0x3040), (0xFF00, 0xFFF0)]
    chars = {c for low, high in ranges for c in range(low, high)}
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes((row, cell)).decode("gb2312")))
            except UnicodeDecodeError:
                continue  # an unassigned code point of GB 2312
    return chars


@dataclass(frozen=True)
class PlacedLetter:
    """Where one letter sits in a rendered document, and the digest of what was set for it."""

    letter: Letter
    first_page: int  # 1-based, in the document's PDF
    pages: int
    html_sha256: str  # of the letter's own HTML (LetterRenderer.html): its words, amounts, code and QR image


@dataclass(frozen=True)
class RenderedDocument:
    """Whole letters, one after another, in one PDF: a print batch, or a part of a large one."""

    pdf: bytes
    letters: tuple[PlacedLetter, ...]

    @property
    def pages(self) -> int:
        return sum(placed.pages for placed in self.letters)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


class LetterRenderer:
    """Jinja2 HTML (templates/letters/, autoescaped) -> WeasyPrint PDF, one template per letter kind.

    Letters are set together: a print batch is one document (print_batch.html), each letter from a new page and
    counting its own pages, so the stylesheet, the fonts and the PDF's font subsets are made once per document, not
    once per letter; a letter then costs its layout (~35 ms of CPU) and a share of the writing. A batch is cut into
    parts (`_parts`: at most `PART_LETTERS` letters, one PDF each), rendered in `workers` processes when there are
    enough letters; each worker builds its own renderer once (fonts and templates)."""

    def __init__(self, directory: Path, workers: int = 1, font_cache: Path | None = None) -> None:
        self.directory = directory
        self.workers = workers
        self.font_cache = font_cache
        self._pool: ProcessPoolExecutor | None = None
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._base_url = str(directory.resolve())
        self._fonts = FontConfiguration()
        self._css = [weasyprint.CSS(filename=str(directory / "letter.css"), font_config=self._fonts)]
        if font_cache is not None:
            face = letter_face(font_cache).as_uri()
            self._css.append(
                weasyprint.CSS(
                    string=f'@font-face {{ font-family: "{LETTER_FACE}"; src: url("{face}"); }}\n'
                    f'html {{ font-family: "{LETTER_FACE}", "{SYSTEM_FACE}"; }}',
                    font_config=self._fonts,
                )
            )

    def html(self, letter: Letter) -> str:
        """The letter's own HTML, as it sits in a print batch's document."""
        language = letter.language
        currency = letter.debt.currency
        return self._env.get_template(f"{letter.kind}.html").render(
            letter=letter,
            kind=letter.kind,
            zh=language == "zh",
            lender=letter.lender,
            debtor=letter.debtor,
            debt=letter.debt,
            verification=letter.verification,
            measure=getattr(letter, "measure", None),
            visit=getattr(letter, "visit", None),
            qr=qr_data_uri(letter.verification.url),
            money=lambda minor: format_money(minor, currency),
            day=lambda d: long_date(d, language),
        )

    def render(self, letters: Sequence[Letter], title: str = "letters") -> RenderedDocument:
        """`letters` in one PDF, in order, each from a new page; where each one landed is read off the laid-out
        pages (the page that holds the letter's anchor starts it)."""
        if not letters:
            raise ValueError("a document needs at least one letter")
        pieces = [self.html(letter) for letter in letters]
        source = self._env.get_template("print_batch.html").render(
            title=title, letters=[markupsafe.Markup(piece) for piece in pieces]
        )
        with _cycle_collection_paused():
            document = weasyprint.HTML(string=source, base_url=self._base_url).render(
                stylesheets=self._css, font_config=self._fonts
            )
            starts: dict[str, int] = {}
            for number, page in enumerate(document.pages, 1):
                for anchor in page.anchors:
                    if anchor.startswith("letter-"):
                        starts.setdefault(anchor.removeprefix("letter-"), number)
            pdf, pages = document.write_pdf(), len(document.pages)
            del document
        firsts = [starts[letter.letter_id] for letter in letters]
        ends = [*firsts[1:], pages + 1]
        placed = tuple(
            PlacedLetter(letter, first, end - first, hashlib.sha256(piece.encode("utf-8")).hexdigest())
            for letter, piece, first, end in zip(letters, pieces, firsts, ends, strict=True)
        )
        return RenderedDocument(pdf, placed)

    def warm(self) -> None:
        """Compile the templates and set a line in each language (fontconfig and Pango load the faces): what a
        process's first document otherwise pays for, done when a worker starts."""
        for name in self._env.list_templates(extensions=["html"]):
            self._env.get_template(name)
        sample = '<article class="letter zh" lang="zh-CN">字 A 1</article><article class="letter en">A 1</article>'
        weasyprint.HTML(string=sample, base_url=self._base_url).render(stylesheets=self._css, font_config=self._fonts)

    def render_pdf(self, letter: Letter) -> bytes:
        """One letter alone as a PDF (a pre-visit notice, a sample)."""
        return self.render([letter], letter.letter_id).pdf

    def render_parts(self, letters: Sequence[Letter], title: str = "letters") -> Iterator[RenderedDocument]:
        """Every letter, in order, in parts of at most `PART_LETTERS` (`_parts`); in the worker processes when
        there are enough letters, each part to the next free worker."""
        parts = _parts(letters, self.workers)
        if self.workers <= 1 or len(parts) <= 1:
            for part in parts:
                yield self.render(part, title)
            return
        try:
            done = self.pool().map(_render_in_worker, parts, [title] * len(parts))
            for part, (pdf, places) in zip(parts, done, strict=True):
                yield RenderedDocument(
                    pdf, tuple(PlacedLetter(letter, *place) for letter, place in zip(part, places, strict=True))
                )
        except BrokenProcessPool:
            self.close()  # a worker died: the next batch starts a fresh pool
            raise

    def pool(self) -> ProcessPoolExecutor:
        """The worker processes, started on first use and kept for later batches (starting them imports WeasyPrint
        and loads the fonts in each: seconds on a busy machine). forkserver, not fork: the caller may hold database
        connections, locks and threads that a fork would copy."""
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            setup = (self.directory, self.font_cache, context.Barrier(self.workers))
            self._pool = ProcessPoolExecutor(self.workers, context, initializer=_start_worker, initargs=setup)
        return self._pool

    def start(self) -> None:
        """Start the worker processes now and return when every one has its renderer, so that a first batch does
        not wait for them: one task per worker, each held at a barrier until all are running (the pool starts a
        process for each task while none is idle)."""
        if self.workers > 1:
            list(self.pool().map(_ready, range(self.workers)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


@contextlib.contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """No cycle collection while WeasyPrint lays out and writes a document, then one: its boxes, by the hundred
    thousand, live until the PDF is written anyway, and the collector walked them again and again (a sixth of the
    CPU of a 100-letter document)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
            gc.collect()


# A part of a print batch is one PDF: at most this many letters, so that a worker's laid-out pages (all held in
# memory until the PDF is written) stay a few hundred MB and the print room gets files of a handy size.
PART_LETTERS: Final = 100
# Below this many letters a worker, handing them out costs more than it saves.
_PER_WORKER_AT_LEAST: Final = 8
_worker: LetterRenderer | None = None
_all_started: Barrier | None = None  # shared by the workers of one pool


def _parts(letters: Sequence[Letter], workers: int) -> list[Sequence[Letter]]:
    """The letters cut in order into parts of at most `PART_LETTERS`, of sizes at most a letter apart; with several
    workers and enough letters, as many parts as workers (or a whole number each), so that every core works on the
    batch. Not more: a document has a cost of its own (the stylesheet, the font subsets, a cycle collection of the
    process's objects), about one and a half letters', which parts of ten letters paid six times over."""
    if not letters:
        return []
    count = -(-len(letters) // PART_LETTERS)
    if workers > 1 and len(letters) >= _PER_WORKER_AT_LEAST * workers:
        count = workers * -(-count // workers)
    bounds = [len(letters) * i // count for i in range(count + 1)]
    return [letters[start:end] for start, end in itertools.pairwise(bounds)]


def _start_worker(directory: Path, font_cache: Path | None, all_started: Barrier) -> None:
    global _worker, _all_started
    _worker = LetterRenderer(directory, font_cache=font_cache)
    _worker.warm()
    _all_started = all_started


def _ready(_: int) -> None:
    assert _all_started is not None, "the worker was not started"
    _all_started.wait(timeout=300)


def _render_in_worker(letters: Sequence[Letter], title: str) -> tuple[bytes, list[tuple[int, int, str]]]:
    assert _worker is not None, "the worker was not started"
    rendered = _worker.render(letters, title)
    return rendered.pdf, [(p.first_page, p.pages, p.html_sha256) for p in rendered.letters]


MANIFEST_FIELDS: Final = (
    "letter_id",
    "kind",
    "template",
    "action_key",
    "visit_id",
    "debtor_ref",
    "language",
    "file",
    "first_page",
    "pages",
    "html_sha256",
    "file_sha256",
)


@dataclass(frozen=True)
class ManifestRow:
    """One printed letter as the print room sees it: no name or address, only the debtor's reference; the file and
    pages it is printed on, with the file's SHA-256 and the SHA-256 of the letter's own HTML."""

    letter_id: str
    kind: str
    template: str
    action_key: int | None
    visit_id: str | None
    debtor_ref: str
    language: str
    file: str
    first_page: int
    pages: int
    html_sha256: str
    file_sha256: str

    @classmethod
    def of(cls, placed: PlacedLetter, file: str, file_sha256: str) -> ManifestRow:
        letter = placed.letter
        return cls(
            letter_id=letter.letter_id,
            kind=letter.kind,
            template=letter.template if isinstance(letter, WrittenNotice) else "letter.pre_visit_notice",
            action_key=letter.action_key,
            visit_id=letter.visit.visit_id if isinstance(letter, PreVisitNotice) else None,
            debtor_ref=letter.debtor.ref,
            language=letter.language,
            file=file,
            first_page=placed.first_page,
            pages=placed.pages,
            html_sha256=placed.html_sha256,
            file_sha256=file_sha256,
        )


@dataclass(frozen=True)
class PrintFile:
    file: str
    letters: int
    pages: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class PrintedBatch:
    batch_id: str
    path: Path  # the batch folder: the PDFs (letters-001.pdf, …), manifest.csv and manifest.json
    files: tuple[PrintFile, ...]
    rows: tuple[ManifestRow, ...]


class PrintBatch:
    """Writes a print batch folder all at once: everything goes to a hidden sibling folder that is renamed into place
    only when complete, so a crash leaves either the whole batch or none of it (a stale `.partial` is swept later)."""

    def __init__(self, root: Path, renderer: LetterRenderer) -> None:
        self.root = root
        self.renderer = renderer

    def write(self, batch_id: str, letters: Sequence[Letter]) -> PrintedBatch:
        if not _SAFE_NAME.fullmatch(batch_id):
            raise ValueError(f"batch id {batch_id!r} is not a safe folder name")
        ids = [letter.letter_id for letter in letters]
        if len(set(ids)) != len(ids):
            raise ValueError("letter ids in a batch must be unique")
        final = self.root / batch_id
        if final.exists():
            raise FileExistsError(f"print batch {batch_id} already exists at {final}")
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".{batch_id}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{batch_id}.partial-", dir=self.root))
        try:
            files, rows = [], []
            for number, part in enumerate(self.renderer.render_parts(letters, batch_id), 1):
                name = f"letters-{number:03d}.pdf"
                _write_synced(partial / name, part.pdf)
                files.append(PrintFile(name, len(part.letters), part.pages, len(part.pdf), part.sha256))
                rows += [ManifestRow.of(placed, name, part.sha256) for placed in part.letters]
            _write_manifest(partial, batch_id, files, rows)
            _fsync_dir(partial)
            os.rename(partial, final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return PrintedBatch(batch_id, final, tuple(files), tuple(rows))


def _write_manifest(folder: Path, batch_id: str, files: Sequence[PrintFile], rows: Sequence[ManifestRow]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    _write_synced(folder / "manifest.csv", text.getvalue().encode("utf-8"))
    document = {"batch_id": batch_id, "files": [asdict(f) for f in files], "letters": [asdict(row) for row in rows]}
    _write_synced(folder / "manifest.json", json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"))


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
