"""The pytest plugin: config files become test items (per config or per layer), failures show
the failing rows, invalid configs fail with their located message, and pytest-xdist works."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"


@pytest.fixture
def project(pytester):
    """A project with a passing and a failing config (plugin layer in plugins/)."""
    nets = pytester.mkdir("nets")
    (nets / "ok.gradcheck.yaml").write_text((FIXTURES / "passing.yaml").read_text())
    (nets / "bad.gradcheck.yaml").write_text((FIXTURES / "failing.yaml").read_text())
    (nets / "warn.gradcheck.yaml").write_text((FIXTURES / "warning.yaml").read_text())
    (nets / "notes.yaml").write_text("not: a config\n")      # not matched by the patterns
    pytester.mkdir("plugins")
    (pytester.path / "plugins" / "forgot_bias.py").write_text((FIXTURES / "forgot_bias.py").read_text())
    return pytester


def test_inactive_without_the_option(project):
    result = project.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_one_test_per_config_with_the_failing_rows(project):
    # subprocess: the plugin layer must not register inside this test process
    result = project.runpytest_subprocess("--gradcheck", "--gradcheck-plugin",
                                          "plugins/forgot_bias.py", "-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=2, failed=1)     # a warning passes
    result.stdout.fnmatch_lines([
        "nets/bad.gradcheck.yaml F*",
        "gradcheck failing: wrong gradient in 1 dense_forgot_bias b (FAIL)",
        "*1  dense_forgot_bias  *6  x *pass*",
        "* b *(4,) *(4,) *1.0e+00 *FAIL*",
        "*failing: FAILED — 8 checks: 1 FAIL, 7 pass*",
        "FAILED nets/bad.gradcheck.yaml::gradcheck - gradcheck failing: wrong*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_ini_paths_plugins_and_per_layer(project):
    project.makeini("""
        [pytest]
        testpaths = tests
        gradcheck_paths = nets
        gradcheck_plugins = plugins/forgot_bias.py
        gradcheck_per_layer = true
    """)
    project.mkdir("tests")
    (project.path / "nets" / "notes.yaml").unlink()           # every config under nets/ is collected
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    # 4 nodes each: dense, its tanh, dense, the loss; 2 for the warning: dense, the loss
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(["*nets/bad.gradcheck.yaml::1 dense_forgot_bias FAILED*",
                                 "*nets/bad.gradcheck.yaml::1a tanh PASSED*",
                                 "*nets/ok.gradcheck.yaml::loss mse PASSED*"])


def test_invalid_config_is_one_failing_test(pytester):
    (pytester.path / "broken.gradcheck.yaml").write_text((FIXTURES / "invalid.yaml").read_text())
    result = pytester.runpytest_inprocess("--gradcheck", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["broken.gradcheck.yaml:5:19: layers[0].units: must be > 0, got 0"])


def test_pytest_xdist_spreads_configs_and_strict_fails_warnings(project):
    pytest.importorskip("xdist")
    result = project.runpytest_subprocess("--gradcheck", "--gradcheck-plugin", "plugins/forgot_bias.py",
                                          "-p", "no:cacheprovider", "-n", "2", "--gradcheck-strict")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*gradcheck warning: wrong gradient in 1 dense_bias_off b (warn)*"])


def test_an_unknown_layer_type_says_how_to_load_its_plugin(pytester):
    (pytester.path / "net.gradcheck.yaml").write_text(
        "input: {shape: [3]}\nlayers: [{type: my_thing}]\nloss: mse\n")
    result = pytester.runpytest_subprocess("--gradcheck", "-p", "no:cacheprovider")
    assert result.ret == 1
    assert ("net.gradcheck.yaml:2:11: layers[0].type: unknown layer type `my_thing` (a plugin layer? "
            "load its file: --gradcheck-plugin FILE or `gradcheck_plugins` in the ini file, or list it "
            "under the config's `plugins:`); valid types: ") in result.stdout.str()


def test_a_gradcheck_path_that_names_no_config_fails_in_its_place(project):
    # the command line's rule for its PATHs: a path that names nothing, or a folder with no
    # configs, is a located error of its own, and every other config is still checked
    project.mkdir("empty")
    (project.path / "nets" / "notes.yaml").unlink()
    project.makeini("""
        [pytest]
        testpaths = tests
        gradcheck_paths = nets nosuch empty
        gradcheck_plugins = plugins/forgot_bias.py
    """)
    project.mkdir("tests")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines([
        "FAILED nets/bad.gradcheck.yaml::gradcheck - gradcheck failing: wrong*",
        "FAILED nosuch - nosuch: no such file or folder*",
        "FAILED empty - empty: no config files*",
    ])
    result.stdout.fnmatch_lines(["nosuch: no such file or folder (gradcheck_paths in tox.ini)",
                                 "empty: no config files (*.yaml, *.yml, *.toml) in this folder "
                                 "(gradcheck_paths in tox.ini)"])
    assert "Traceback" not in result.stdout.str() and "ERROR" not in result.stdout.str()


def test_gradcheck_paths_without_testpaths_and_only_where_the_run_collects(pytester):
    nets = pytester.mkdir("nets")
    (nets / "ok.gradcheck.yaml").write_text((FIXTURES / "passing.yaml").read_text())
    pytester.makeini("""
        [pytest]
        gradcheck_paths = nets missing
    """)
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_one.py").write_text("def test_one():\n    pass\n")
    whole = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf")  # numpy loads once a process
    whole.assert_outcomes(passed=2, failed=1)
    whole.stdout.fnmatch_lines(["missing: no such file or folder (gradcheck_paths in tox.ini)",
                                "FAILED missing - missing: no such file or folder*"])
    one = pytester.runpytest_inprocess("-p", "no:cacheprovider", "tests/test_one.py")
    one.assert_outcomes(passed=1)
