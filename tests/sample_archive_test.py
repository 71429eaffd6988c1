"""The generated sample archive has the real kagglecatsanddogs_5340.zip's layout and quirks."""

import io
import pathlib
import re
import subprocess
import sys
import threading
import time
import zipfile

import pytest
from PIL import Image

from data import sample_archive

IMAGES_PER_CLASS = 12
_IMAGE_NAME = re.compile(r"^PetImages/(Cat|Dog)/\d+\.jpg$")


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "kagglecatsanddogs_5340.zip"
    return sample_archive.generate_sample_archive(path, images_per_class=IMAGES_PER_CLASS, seed=7)


def _jpg_entries(path):
    """(name, bytes, first bytes as TFDS's builder peeks them) for every class-folder .jpg."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if _IMAGE_NAME.match(info.filename):
                with archive.open(info) as entry:
                    head = entry.peek(10)
                    yield info.filename, entry.read(), head


def test_layout_matches_the_real_archive(archive_path):
    names = zipfile.ZipFile(archive_path).namelist()
    assert {"PetImages/Cat/Thumbs.db", "PetImages/Dog/Thumbs.db", "CDLA-Permissive-2.0.pdf", "readme[1].txt"} <= set(names)
    assert all(_IMAGE_NAME.match(n) or n.endswith(("Thumbs.db", "/")) or "/" not in n for n in names)
    for folder in sample_archive.CLASS_FOLDERS:
        numbers = sorted(int(n.rsplit("/", 1)[1][:-4]) for n in names if _IMAGE_NAME.match(n) and f"/{folder}/" in n)
        assert numbers == list(range(len(numbers)))


def test_exactly_the_corrupt_count_tfds_expects_lack_a_jfif_marker(archive_path):
    entries = list(_jpg_entries(archive_path))
    without_jfif = [name for name, _, head in entries if b"JFIF" not in head]
    assert len(without_jfif) == sample_archive.NUM_CORRUPT_ENTRIES == 1738
    assert len(entries) - len(without_jfif) == 2 * IMAGES_PER_CLASS


def test_valid_entries_are_jfif_jpegs_of_photo_like_sizes(archive_path):
    sizes = set()
    for name, data, head in _jpg_entries(archive_path):
        if b"JFIF" in head:
            image = Image.open(io.BytesIO(data))
            image.load()
            assert image.format == "JPEG", name
            assert 100 <= min(image.size) and max(image.size) <= 500, (name, image.size)
            sizes.add(image.size)
    assert len(sizes) > IMAGES_PER_CLASS  # varied sizes and aspect ratios


def test_corrupt_entries_are_of_the_real_archives_kinds(archive_path):
    kinds = {}
    for _, data, head in _jpg_entries(archive_path):
        if b"JFIF" not in head:
            kind = _sniff_kind(data)
            kinds[kind] = kinds.get(kind, 0) + 1
    manifest = sample_archive.read_manifest(archive_path)["corrupt_entries"]
    assert kinds["empty"] == manifest["empty"] > 0
    assert kinds["exif_jpeg"] >= manifest["exif_jpeg"] > 0  # some truncated entries are cut Exif JPEGs
    assert kinds["png"] >= manifest["png"] > 0
    assert kinds["gif"] == manifest["gif"] > 0
    assert kinds["bmp"] == manifest["bmp"] > 0
    assert manifest["truncated"] > 0
    assert sum(manifest.values()) == 1738


def test_decodable_and_undecodable_corrupt_entries(archive_path):
    decodable = undecodable = 0
    for _, data, head in _jpg_entries(archive_path):
        if b"JFIF" not in head:
            try:
                Image.open(io.BytesIO(data)).load()
                decodable += 1
            except (OSError, SyntaxError):
                undecodable += 1
    corrupt = sample_archive.read_manifest(archive_path)["corrupt_entries"]
    assert decodable == sum(corrupt[k] for k in sample_archive.DECODABLE_CORRUPT_KINDS)
    assert undecodable == corrupt["empty"] + corrupt["truncated"]


def test_generation_is_deterministic_per_seed(archive_path, tmp_path):
    same = sample_archive.generate_sample_archive(tmp_path / "same.zip", images_per_class=IMAGES_PER_CLASS, seed=7)
    other = sample_archive.generate_sample_archive(tmp_path / "other.zip", images_per_class=IMAGES_PER_CLASS, seed=8)
    assert same.read_bytes() == archive_path.read_bytes()
    assert other.read_bytes() != archive_path.read_bytes()


def test_ensure_regenerates_only_when_parameters_change(tmp_path):
    path = tmp_path / "kagglecatsanddogs_5340.zip"
    sample_archive.ensure_sample_archive(path, images_per_class=2)
    first_mtime = path.stat().st_mtime_ns
    sample_archive.ensure_sample_archive(path, images_per_class=2)
    assert path.stat().st_mtime_ns == first_mtime
    sample_archive.ensure_sample_archive(path, images_per_class=3)
    assert sample_archive.read_manifest(path)["valid_images"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".json"]


def test_ensure_regenerates_a_damaged_archive(tmp_path):
    path = sample_archive.ensure_sample_archive(tmp_path / "kagglecatsanddogs_5340.zip", images_per_class=2)
    path.write_bytes(path.read_bytes()[:1000])
    sample_archive.ensure_sample_archive(path, images_per_class=2)
    assert zipfile.is_zipfile(path)


def test_command_line(tmp_path):
    output = tmp_path / "cli" / "kagglecatsanddogs_5340.zip"
    result = subprocess.run(
        [sys.executable, "-m", "data.sample_archive", "--output", str(output), "--images-per-class", "2"],
        capture_output=True, text=True, check=True, cwd=pathlib.Path(__file__).resolve().parents[1],
    )
    assert str(output) in result.stdout
    assert sample_archive.read_manifest(output)["images_per_class"] == 2


def _sniff_kind(data: bytes) -> str:
    if not data:
        return "empty"
    if data.startswith(b"\xff\xd8\xff\xe1") and data[6:10] == b"Exif":
        return "exif_jpeg"
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"GIF8"):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    return "other"


def test_two_makers_of_the_same_archive_take_turns_and_it_is_made_once(tmp_path, monkeypatch):
    path = tmp_path / "kagglecatsanddogs_5340.zip"
    generate, made = sample_archive.generate_sample_archive, []

    def slow_generate(*args, **kwargs):
        made.append(threading.get_ident())
        time.sleep(0.5)  # the second maker arrives while the first writes
        return generate(*args, **kwargs)

    monkeypatch.setattr(sample_archive, "generate_sample_archive", slow_generate)
    makers = [threading.Thread(target=sample_archive.ensure_sample_archive, args=(path,),
                               kwargs={"images_per_class": 2}) for _ in range(2)]
    for maker in makers:
        maker.start()
    for maker in makers:
        maker.join()
    assert len(made) == 1 and zipfile.is_zipfile(path)
    assert sample_archive.read_manifest(path)["valid_images"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".json"]
