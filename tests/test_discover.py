"""Which files `gradcheck check PATH...` checks: files as given, folders searched recursively for
*.yaml, *.yml and *.toml (hidden folders and files skipped), globs, --exclude, no duplicates."""
from __future__ import annotations

from pathlib import Path

import pytest

from gradcheck_cli.errors import UsageError
from gradcheck_cli.run.pipeline import discover


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ["nets/a.yaml", "nets/b.yml", "nets/c.toml", "nets/notes.txt", "nets/deep/d.yaml",
                 "nets/.hidden/e.yaml", "nets/.f.yaml", "nets/deep/skip_me.yaml", "top.yaml"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x: 1\n")
    return tmp_path


def _names(paths):
    return [p.as_posix() for p in paths]


def test_folders_recurse_sorted_skipping_hidden_and_other_suffixes(tree):
    assert _names(discover(["nets"])) == ["nets/a.yaml", "nets/b.yml", "nets/c.toml",
                                          "nets/deep/d.yaml", "nets/deep/skip_me.yaml"]


def test_files_as_given_in_argument_order_without_duplicates(tree):
    assert _names(discover(["top.yaml", "nets/deep", "./top.yaml", "nets/deep/d.yaml"])) == \
        ["top.yaml", "nets/deep/d.yaml", "nets/deep/skip_me.yaml"]


def test_globs_and_exclude(tree):
    assert _names(discover(["nets/**/*.yaml"])) == ["nets/a.yaml", "nets/deep/d.yaml",
                                                     "nets/deep/skip_me.yaml"]
    assert _names(discover(["nets"], exclude=["skip_*", "*.toml"])) == \
        ["nets/a.yaml", "nets/b.yml", "nets/deep/d.yaml"]


def test_missing_paths_and_empty_globs_are_usage_errors(tree):
    with pytest.raises(UsageError, match="^nope.yaml: no such file or folder$"):
        discover(["nope.yaml"])
    with pytest.raises(UsageError, match=r"^nets/\*\.json: no file matches this pattern$"):
        discover(["nets/*.json"])
