"""A print batch is a folder the print room can trust: every PDF listed with its SHA-256, and never half written."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import jinja2
import pytest

from duecourse.adapters.channels.letters import MANIFEST_FIELDS, LetterRenderer, PrintBatch, _parts
from tests.unit.letters.pdf_tools import FONT_CACHE, pdf_pages, pdf_text
from tests.unit.letters.samples import DEBTOR, pre_visit, written

TEMPLATES = Path(__file__).resolve().parents[3] / "templates" / "letters"


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer(TEMPLATES, font_cache=FONT_CACHE)


def test_the_manifest_lists_every_letter_with_its_pages_and_digests(renderer, tmp_path):
    letters = [written("zh", "WN-1"), written("en", "WN-2"), pre_visit("zh"), pre_visit("en", "PV-2")]
    batch = PrintBatch(tmp_path / "letters", renderer).write("B-20260331-1", letters)

    assert batch.path == tmp_path / "letters" / "B-20260331-1"
    assert sorted(p.name for p in batch.path.iterdir()) == ["letters-001.pdf", "manifest.csv", "manifest.json"]
    with open(batch.path / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    document = json.loads((batch.path / "manifest.json").read_text(encoding="utf-8"))
    assert document["batch_id"] == "B-20260331-1"
    assert tuple(rows[0]) == MANIFEST_FIELDS
    assert (
        [r["letter_id"] for r in rows]
        == [r["letter_id"] for r in document["letters"]]
        == ["WN-1", "WN-2", "PV-V-2026-000123", "PV-2"]
    )
    pdf = (batch.path / "letters-001.pdf").read_bytes()
    (listed_file,) = document["files"]
    assert listed_file == {
        "file": "letters-001.pdf",
        "letters": 4,
        "pages": pdf_pages(batch.path / "letters-001.pdf"),
        "bytes": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(),
    }
    # Each letter from a new page, one after another; the pages are the letter's own, with its footer.
    assert [(int(r["first_page"]), int(r["pages"])) for r in rows] == [(1, 1), (2, 1), (3, 2), (5, 2)]
    assert listed_file["pages"] == 6
    for row, listed, letter in zip(rows, document["letters"], letters, strict=True):
        assert row["file"] == listed["file"] == "letters-001.pdf"
        assert row["file_sha256"] == listed["file_sha256"] == listed_file["sha256"]
        assert row["html_sha256"] == listed["html_sha256"] == hashlib.sha256(renderer.html(letter).encode()).hexdigest()
        assert int(row["first_page"]) == listed["first_page"] and int(row["pages"]) == listed["pages"]
        assert row["debtor_ref"] == "B-000042"
        first, last = listed["first_page"], listed["first_page"] + listed["pages"] - 1
        own = "".join(pdf_text(batch.path / row["file"], first, last).split())
        label = "第{n}页，共{m}页" if letter.language == "zh" else "Page{n}of{m}"
        assert [label.format(n=n, m=listed["pages"]) in own for n in range(1, listed["pages"] + 1)] == [True] * (
            listed["pages"]
        )
        assert own.count(letter.letter_id) >= listed["pages"]  # the reference in every page footer
        assert "K7QM-3XZP-9RTA-B2CW" in own
    assert [(r["kind"], r["action_key"], r["visit_id"], r["language"]) for r in rows] == [
        ("written_notice", "17", "", "zh"),
        ("written_notice", "17", "", "en"),
        ("pre_visit_notice", "", "V-2026-000123", "zh"),
        ("pre_visit_notice", "", "V-2026-000123", "en"),
    ]
    # The print room's lists name the debtor only by reference.
    listing = (batch.path / "manifest.csv").read_text(encoding="utf-8") + (batch.path / "manifest.json").read_text(
        encoding="utf-8"
    )
    for debtor in DEBTOR.values():
        assert debtor.name not in listing and debtor.postal_address.splitlines()[0] not in listing
    assert batch.rows[0].html_sha256 == rows[0]["html_sha256"]


def test_each_letter_reads_back_alone_from_its_pages(renderer, tmp_path):
    # Letters side by side in one document keep their own words: each page range has its code and no other's.
    codes = ["K7QM3XZP9RTAB2CW", "0123456789ABCDEF", "ZYXWVUTSRQPNMKJH"]
    letters = [written("zh", "WN-1", codes[0]), pre_visit("en", "PV-1", codes[1]), written("en", "WN-2", codes[2])]
    rendered = renderer.render(letters)
    path = tmp_path / "part.pdf"
    path.write_bytes(rendered.pdf)
    for one, code in zip(rendered.letters, codes, strict=True):
        own = "".join(pdf_text(path, one.first_page, one.first_page + one.pages - 1).split()).replace("-", "")
        assert [c in own for c in codes] == [c == code for c in codes]


def test_a_batch_is_never_written_twice(renderer, tmp_path):
    batches = PrintBatch(tmp_path, renderer)
    batches.write("B-1", [written("zh")])
    with pytest.raises(FileExistsError):
        batches.write("B-1", [written("en")])
    assert json.loads((tmp_path / "B-1" / "manifest.json").read_text())["letters"][0]["language"] == "zh"


def test_a_failure_midway_leaves_no_batch_and_no_partial_folder(tmp_path):
    # A template folder without the pre-visit template: the second letter fails after the first was written.
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    (broken / "pre_visit_notice.html").unlink()
    root = tmp_path / "out"
    letters = [written("zh"), pre_visit("zh")]
    with pytest.raises(jinja2.TemplateNotFound):
        PrintBatch(root, LetterRenderer(broken)).write("B-2", letters)
    assert list(root.iterdir()) == []


def test_a_stale_partial_from_a_crash_is_swept(renderer, tmp_path):
    stale = tmp_path / ".B-3.partial-abc123"
    stale.mkdir()
    (stale / "WN-17.pdf").write_bytes(b"%PDF-half")
    batch = PrintBatch(tmp_path, renderer).write("B-3", [written("zh")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["B-3"]
    assert (batch.path / batch.rows[0].file).read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize("batch_id", ["../escape", "", ".hidden", "a/b"])
def test_batch_ids_are_safe_folder_names(renderer, tmp_path, batch_id):
    with pytest.raises(ValueError, match="safe folder name"):
        PrintBatch(tmp_path, renderer).write(batch_id, [written("zh")])


def test_letter_ids_are_unique_in_a_batch(renderer, tmp_path):
    with pytest.raises(ValueError, match="unique"):
        PrintBatch(tmp_path, renderer).write("B-4", [written("zh"), written("en")])
    assert not (tmp_path / "B-4").exists()


def test_worker_processes_print_the_same_letters_as_one_process(tmp_path):
    letters = [written(lang, f"WN-{i}") for i, lang in enumerate(["zh", "en"] * 8)]
    in_process = LetterRenderer(TEMPLATES, font_cache=FONT_CACHE)
    alone = PrintBatch(tmp_path, in_process).write("B-alone", letters)
    renderer = LetterRenderer(TEMPLATES, 2, FONT_CACHE)
    try:
        renderer.start()  # both workers up, each with its renderer, before the first batch
        pool = renderer.pool()
        assert len(pool._processes) == 2  # the pool has no public count of its processes
        shared = PrintBatch(tmp_path, renderer).write("B-workers", letters)
        again = PrintBatch(tmp_path, renderer).write("B-again", letters)
        assert renderer.pool() is pool  # the workers are started once and kept for later batches
    finally:
        renderer.close()
    # The workers print the batch in two parts (one each), letter for letter as one process would.
    assert [(f.file, f.letters) for f in shared.files] == [("letters-001.pdf", 8), ("letters-002.pdf", 8)]
    assert [(f.file, f.letters) for f in alone.files] == [("letters-001.pdf", 16)]
    expected = [(r.letter_id, r.html_sha256, r.pages) for r in alone.rows]
    assert [(r.letter_id, r.html_sha256, r.pages) for r in shared.rows] == expected
    assert [(r.letter_id, r.html_sha256, r.pages) for r in again.rows] == expected
    assert [(r.file, r.first_page) for r in shared.rows] == [
        (f"letters-00{1 + i // 8}.pdf", 1 + i % 8) for i in range(16)
    ]
    # A part from a worker is byte for byte the PDF one process makes of the same letters under the same title.
    assert [f.sha256 for f in shared.files] == [
        in_process.render(letters[:8], "B-workers").sha256,
        in_process.render(letters[8:], "B-workers").sha256,
    ]


@pytest.mark.parametrize(
    ("letters", "workers", "sizes"),
    [
        (0, 2, []),
        (15, 2, [15]),  # fewer than 8 letters a worker: one part, in the calling process
        (16, 2, [8, 8]),
        (58, 2, [29, 29]),  # one part a worker
        (300, 2, [75] * 4),  # at most 100 letters a part, a whole number of parts a worker
        (150, 1, [75, 75]),
    ],
)
def test_a_batch_is_cut_in_order_into_parts_of_even_size(letters, workers, sizes):
    batch = list(range(letters))
    parts = _parts(batch, workers)
    assert [len(part) for part in parts] == sizes
    assert [n for part in parts for n in part] == batch
