"""Reading prompt files: every format yields located rows; bad files give one clear line."""

import json

import pytest

from specscope.errors import SpecscopeError
from specscope.workloads.local import read_rows


def test_jsonl_skips_blank_lines_and_numbers_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"q": "a"}\n\n{"q": "b"}\n', encoding="utf-8")
    assert read_rows(path) == [(f"{path}:1", {"q": "a"}), (f"{path}:3", {"q": "b"})]


def test_jsonl_bad_line_is_located(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"q": "a"}\n{"q": oops}\n', encoding="utf-8")
    with pytest.raises(SpecscopeError, match=r"p\.jsonl:2: not valid JSON"):
        read_rows(path)


def test_jsonl_non_object_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('["a", "b"]\n', encoding="utf-8")
    with pytest.raises(SpecscopeError, match=r"p\.jsonl:1: expected a JSON object"):
        read_rows(path)


def test_json_array(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"q": "a"}, {"q": "b"}]), encoding="utf-8")
    assert [row for _, row in read_rows(path)] == [{"q": "a"}, {"q": "b"}]


def test_csv_and_tsv_with_line_numbers(tmp_path):
    csv_path = tmp_path / "p.csv"
    csv_path.write_text('q,ctx\n"multi\nline",x\nsecond,y\n', encoding="utf-8")
    rows = read_rows(csv_path)
    assert rows[0] == (f"{csv_path}:2", {"q": "multi\nline", "ctx": "x"})
    assert rows[1][0] == f"{csv_path}:4"
    tsv_path = tmp_path / "p.tsv"
    tsv_path.write_text("q\tctx\nhello, world\tx\n", encoding="utf-8")
    assert read_rows(tsv_path)[0][1] == {"q": "hello, world", "ctx": "x"}


def test_csv_row_longer_than_header(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("q\na,b\n", encoding="utf-8")
    with pytest.raises(SpecscopeError, match=r"p\.csv:2: more values"):
        read_rows(path)


@pytest.mark.parametrize(
    "name, text", [("e.jsonl", ""), ("e.jsonl", "\n\n"), ("e.csv", ""), ("e.csv", "q,ctx\n"), ("e.json", "[]")]
)
def test_empty_files(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecscopeError, match="has no records"):
        read_rows(path)


def test_missing_and_unknown_format(tmp_path):
    with pytest.raises(SpecscopeError, match="does not exist"):
        read_rows(tmp_path / "nope.jsonl")
    path = tmp_path / "p.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(SpecscopeError, match="unknown format '.xlsx'"):
        read_rows(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"q": "\xff\xfe"}\n')
    with pytest.raises(SpecscopeError, match="not UTF-8"):
        read_rows(path)


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"q": ["a", "b"], "n": [1, 2]}), path)
    assert read_rows(path) == [(f"{path} row 1", {"q": "a", "n": 1}), (f"{path} row 2", {"q": "b", "n": 2})]


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    path = tmp_path / "p.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(SpecscopeError, match=r"pip install 'specscope\[parquet\]'"):
        read_rows(path)
