"""Atomic writes (the whole new file or the old one, never a part); result paths that are folders; JSON Lines."""

import pytest

from specscope.errors import SpecscopeError
from specscope.formats.files import atomic_open, check_output_file, write_json_atomic, write_text_atomic


def test_atomic_write_replaces_file(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})
    assert target.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_write_leaves_old_content_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_gives_umask_permissions_not_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "r.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "r.txt").stat().st_mode & 0o777 == 0o644


def test_read_jsonl_objects_skips_blank_lines_and_names_bad_lines(tmp_path):
    from specscope.formats.files import read_jsonl_objects

    good = tmp_path / "good.jsonl"
    good.write_text('\ufeff{"a": 1}\n\n{"b": 2}\n', encoding="utf-8")
    assert list(read_jsonl_objects(good)) == [(1, {"a": 1}), (3, {"b": 2})]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(SpecscopeError, match=r"bad\.jsonl:2: expected a JSON object"):
        list(read_jsonl_objects(bad))


def test_check_output_file_rejects_a_folder_in_one_line(tmp_path):
    check_output_file(tmp_path / "new.csv", "out.csv")  # a file that does not exist yet is fine
    with pytest.raises(SpecscopeError, match=r"^-o .*: is a folder; pass a file path such as .*/out\.csv$"):
        check_output_file(tmp_path, "out.csv")
