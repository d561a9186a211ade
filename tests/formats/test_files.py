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


# ---------------------------------------------------------------------------------------------
# The one reader of text inputs (issue 24: encodings, BOM, size, line and column, one line)


@pytest.mark.parametrize("data, message", [
    (b'{"a": 1}\n{"b": "caf\xe9"}\n', r"t\.jsonl:2: not UTF-8 text \(byte 0xe9 at column 11\); save the file as UTF-8"),
    ('{"a": 1}\n'.encode("utf-16"), r"t\.jsonl: the file is UTF-16 text; save it as UTF-8"),
    ('{"a": 1}\n'.encode("utf-16-le"), r"t\.jsonl:1: a NUL byte at column 2: a binary \(or UTF-16\) file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", r"t\.jsonl:1: not UTF-8 text \(byte 0x89 at column 1\)"),
])
def test_read_text_refuses_what_is_not_utf8_in_one_line(tmp_path, data, message):
    from specscope.formats.files import read_text

    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    with pytest.raises(SpecscopeError, match=message) as err:
        read_text(path, "trace file")
    assert "\n" not in str(err.value)


def test_read_text_drops_a_bom_and_keeps_the_rest(tmp_path):
    from specscope.formats.files import read_text

    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbfa\r\nb\n")
    assert read_text(path) == "a\r\nb\n"


def test_read_text_missing_folder_through_a_file_and_too_large(tmp_path):
    from specscope.formats.files import read_text

    (tmp_path / "f.txt").write_text("0123456789")
    with pytest.raises(SpecscopeError, match=r"^profile file '.*nope.csv' does not exist$"):
        read_text(tmp_path / "nope.csv", "profile file")
    with pytest.raises(SpecscopeError, match=r"is a folder; pass a file"):
        read_text(tmp_path, "profile file")
    with pytest.raises(SpecscopeError, match=r"does not exist \(.*f\.txt is a file, not a folder\)"):
        read_text(tmp_path / "f.txt" / "x.csv")
    with pytest.raises(SpecscopeError, match=r"is larger than 8 bytes"):
        read_text(tmp_path / "f.txt", limit=8)
    assert read_text(tmp_path / "f.txt", limit=10) == "0123456789"


def test_json_errors_say_where_once_and_survive_deep_nesting_and_huge_integers(tmp_path):
    from specscope.formats.files import read_jsonl_objects

    path = tmp_path / "t.jsonl"
    cases = [('{"a": "abc\n', r":1: not valid JSON \(Unterminated string starting at column 7\)$"),
             ('{"a": 1}\n{"a": \x01}\n', r":2: not valid JSON \(Expecting value at column 7\)$"),
             ("[" * 100000 + "\n", r":1: not valid JSON here \(nested too deeply\)"),
             ('{"a": ' + "1" * 5000 + "}\n", r":1: not valid JSON here \(Exceeds the limit")]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(SpecscopeError, match=message) as err:
            list(read_jsonl_objects(path))
        assert " at at " not in str(err.value) and len(str(err.value)) < 300


def test_csv_records_refuse_repeated_columns_long_rows_and_quotes_that_never_close(tmp_path):
    from specscope.formats.files import read_csv_records

    path = tmp_path / "p.csv"
    path.write_text("a,b\n1,2\n\n3,4\n")
    assert read_csv_records(path) == (["a", "b"], [(2, {"a": "1", "b": "2"}), (4, {"a": "3", "b": "4"})])
    for text, message in [("a,b,a\n1,2,3\n", r"p\.csv:1: column 'a' appears twice in the header; keep one"),
                          ("a,b\n1,2,3\n", r"p\.csv:2: more values \(3\) than the header has columns \(2: a,b\)"),
                          ('a,b\n1,2\n"3,4\n' + "5,6\n" * 3000, r"p\.csv:3: a quote that never closes"),
                          ("", r"p\.csv: the file is empty")]:
        path.write_text(text)
        with pytest.raises(SpecscopeError, match=message) as err:
            read_csv_records(path)
        assert len(str(err.value)) < 300  # never the rest of the file
    path.write_text("a,b\n1\n")
    with pytest.raises(SpecscopeError, match=r"p\.csv:2: fewer values \(1\)"):
        read_csv_records(path, exact=True)


# ---------------------------------------------------------------------------------------------
# The atomic writer replaces regular files only, and leaves nothing behind


def test_the_writer_refuses_devices_fifos_links_to_them_and_paths_through_files(tmp_path):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "link-to-fifo").symlink_to(fifo)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "existing.jsonl").write_text("mine")
    cases = [(fifo, "is a device or other special file, not a regular file"),
             (tmp_path / "link-to-fifo", r"is a device or other special file \(through a symbolic link\)"),
             (tmp_path / "dangling", "a symbolic link to nothing"),
             (tmp_path / "existing.jsonl" / "out.csv", r"existing\.jsonl is a file, not a folder"),
             (tmp_path / "existing.jsonl" / "deeper" / "out.csv", r"existing\.jsonl is a file, not a folder")]
    before = sorted(p.name for p in tmp_path.iterdir())
    for target, message in cases:
        with pytest.raises(SpecscopeError, match=message):
            check_output_file(target, "out.csv")
        with pytest.raises(SpecscopeError, match=message):
            write_text_atomic(target, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert fifo.is_fifo() and (tmp_path / "link-to-fifo").is_symlink() and (tmp_path / "existing.jsonl").read_text() == "mine"
    if os.path.exists("/dev/null"):  # checked only: a test must never risk writing there
        for target in ("/dev/null", tmp_path / "link-to-null"):
            if target != "/dev/null":
                target.symlink_to("/dev/null")
            with pytest.raises(SpecscopeError, match="is a device or other special file"):
                check_output_file(target, "out.csv", "-o")


def test_the_writer_writes_through_a_link_to_a_regular_file(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


def test_a_failed_write_removes_the_folders_it_made_and_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import errno
    import os

    target = tmp_path / "a" / "b" / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SpecscopeError, match=r"out\.json: cannot write it \(No space left on device\)$"):
        write_json_atomic(target, {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_check_output_folder_refuses_a_file_and_a_path_through_one(tmp_path):
    from specscope.formats.files import check_output_folder

    (tmp_path / "f").write_text("x")
    check_output_folder(tmp_path / "new" / "dir")
    with pytest.raises(SpecscopeError, match=r"^-o .*f: exists and is not a folder"):
        check_output_folder(tmp_path / "f")
    with pytest.raises(SpecscopeError, match=r"^-o .*f/cell: .*f is a file, not a folder"):
        check_output_folder(tmp_path / "f" / "cell")
    os_fifo = tmp_path / "d"
    os_fifo.mkdir()
    __import__("os").mkfifo(os_fifo / "summary.json")
    with pytest.raises(SpecscopeError, match="summary.json: is a device or other special file"):
        check_output_folder(os_fifo, files=("requests.jsonl", "summary.json"))
