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


# -- on the command line: one rule for every PATH -----------------------------------------------------

def _run(*args, cwd):
    from ci_helpers import gradcheck

    return gradcheck(*args, cwd=cwd)


@pytest.fixture
def configs(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "mlp.yaml").write_text((Path(__file__).resolve().parent.parent / "configs" / "mlp.yaml")
                                       .read_text())
    return tmp_path


@pytest.mark.parametrize("args, stderr", [
    (["mlp.yaml", "empty/"], "error: empty/: no config files (*.yaml, *.yml, *.toml) in this folder\n"),
    (["empty/"], "error: empty/: no config files (*.yaml, *.yml, *.toml) in this folder\n"),
    (["mlp.yaml", "nosuch.yaml"], "error: nosuch.yaml: no such file or folder\n"),
    (["nosuch*.yaml", "mlp.yaml"], "error: nosuch*.yaml: no file matches this pattern\n"),
])
def test_a_path_naming_no_config_is_an_error_and_the_others_are_checked(configs, args, stderr):
    run = _run("check", *args, "--quiet", cwd=configs)
    assert run.returncode == 2
    assert run.stderr == stderr
    checked = "mlp.yaml" in args
    assert ("tiny-mlp: passed" in run.stdout) is checked
    assert run.stdout.splitlines()[-1] == (
        f"{len(args)} config{'s' if len(args) > 1 else ''}: {int(checked)} passed, 0 failed, "
        "1 could not be checked")
    valid = _run("validate", *args, cwd=configs)
    assert valid.returncode == 2
    assert valid.stderr == stderr
    assert valid.stdout.splitlines() == (["ok  mlp.yaml  (43 parameters)"] if checked else []) + [
        f"{len(args)} config{'s' if len(args) > 1 else ''}: {int(checked)} valid, 1 invalid"]


def test_a_folder_whose_configs_are_all_excluded_names_none(configs):
    run = _run("validate", "empty", ".", "--exclude", "mlp.yaml", cwd=configs)
    assert run.returncode == 2
    assert run.stderr == ("error: empty: no config files (*.yaml, *.yml, *.toml) in this folder\n"
                          "error: .: no config files (*.yaml, *.yml, *.toml) in this folder\n")
