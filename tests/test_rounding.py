"""tests/rounding.py: outputs compared up to rounding accept what another BLAS kernel changes and
reject every real change. The pairs below are real: the same command on one machine under
OpenBLAS's SkylakeX kernel (the samples) and under its Haswell kernel (the variants)."""
from __future__ import annotations

import pytest
from rounding import compare, json_differences

SIGN_ERROR = """\
examples/broken/sign_error.yaml  sign-error · seed 0 · float64 · columns layout · central differences, h = 6.1e-06·max(1, |θ|) · 43 parameters · batch m = 4
full check (every entry), 186 comparisons
   #  layer                  line  tensor  in → out      shape  grad   layer err    noise  net err  max abs  status
   1  dense                     9  x       (5,4)→(6,4)   (5,4)  (5,4)    8.6e-12  8.7e-10  1.0e-01  5.4e-11  inherited
                                   W                     (6,5)  (6,5)    8.3e-12  5.6e-10  1.1e-01  1.5e-10  inherited
   2  leaky_relu_sign_error    10  x       (6,4)→(6,4)   (6,4)  (6,4)    1.7e-01  1.4e-09        —  7.4e-01  FAIL
                                   W                     (1,6)  (1,6)    3.4e-11  1.1e-09  1.4e-11  3.5e-11  pass
loss  binary_cross_entropy     12  x       (1,4)→scalar  (1,4)  (1,4)    7.3e-09  7.4e-09  7.3e-09  1.3e-07  pass
  2 leaky_relu_sign_error x: right only where the activation is active (Z > 0): wrong at the 9 entries where Z ≤ 0, where analytic = −numeric: the inactive
branch's derivative has its sign flipped; dx does not match: worst entry (2, 3): analytic -0.368571, numeric 0.368571 (566218910× the noise)
  2 dense_missing_transpose W: dW has shape (5, 3), but W is (3, 5): transposed? its transpose matches (rel err 1.3e-11)
sign-error: FAILED — 9 checks: 1 FAIL, 3 inherited, 5 pass (0.01 s)

1 config: 0 passed, 1 failed"""

#: what the Haswell kernel printed for the same rows (noise, errors and ratios at rounding level)
HASWELL = (SIGN_ERROR
           .replace("1.7e-01  1.4e-09", "1.7e-01  1.3e-09")
           .replace("3.4e-11  1.1e-09  1.4e-11", "3.4e-11  1.1e-09  1.2e-11")
           .replace("8.6e-12  8.7e-10  1.0e-01  5.4e-11", "4.4e-11  8.7e-10  1.0e-01  2.4e-10")
           .replace("566218910×", "591115270×")
           .replace("(rel err 1.3e-11)", "(rel err 2.6e-11)")
           .replace("(0.01 s)", "(0.03 s)"))

SWEEP = """\
step sweep of 1 W (64 entries, end to end)
    h  central (c)  forward (f)  richardson (r)  complex (i)  Taylor r(h)
1e-01      5.4e-02      5.1e-02         1.8e-02      4.3e-16      4.1e-04
1e-03      6.4e-09      2.5e-04         4.4e-12      4.3e-16      5.1e-08
1e-04      6.4e-11      2.5e-05         4.2e-11      4.3e-16      5.1e-10
1e-07      8.4e-09      3.1e-08         5.1e-08      4.3e-16      2.9e-17
1e-09      9.8e-07      1.6e-06         4.6e-06      4.3e-16      9.7e-17
1e-12      8.4e-04      1.4e-03         5.4e-03      4.3e-16      3.3e-16
1e-04 |       f                       *  c
1e-05 |    r     f                 *  c
1e-06 |             f           *  c
1e-07 |                f     *  c
1e-08 |                   *  c
1e-09 |       c        r  c
  central: smallest error 6.4e-11 at h = 1e-04
  forward: smallest error 3.1e-08 at h = 1e-07
  Taylor test: r(h) shrinks as h^1.98: the gradient is right (slope 2)"""

SWEEP_SANDYBRIDGE = """\
step sweep of 1 W (64 entries, end to end)
    h  central (c)  forward (f)  richardson (r)  complex (i)  Taylor r(h)
1e-01      5.4e-02      5.1e-02         1.8e-02      3.7e-16      4.1e-04
1e-03      6.4e-09      2.5e-04         4.5e-12      3.7e-16      5.1e-08
1e-04      6.5e-11      2.5e-05         4.2e-11      3.7e-16      5.1e-10
1e-07      8.4e-09      2.9e-08         4.8e-08      3.7e-16      2.9e-17
1e-09      8.4e-07      1.5e-06         5.1e-06      3.7e-16      3.5e-16
1e-12      7.7e-04      1.2e-03         4.9e-03      3.7e-16      3.3e-16
1e-04 |       f                       *  c
1e-05 |    r     f                 *  c
1e-06 |             f           *
1e-07 |                f     *  c
1e-08 |                   *  c
1e-09 |       c        r  c
  central: smallest error 6.5e-11 at h = 1e-04
  forward: smallest error 2.9e-08 at h = 1e-06
  Taylor test: r(h) shrinks as h^1.99: the gradient is right (slope 2)"""

DIFFERENCE_MATRIX = """\
difference VJP − Gᵀ·J
           0          1          2          3
0   9.14e-13  -1.09e-12  -4.54e-13  -1.82e-11
relative error 6.8e-12: the VJP is Gᵀ·J without ever forming J"""


def test_the_same_output_matches():
    assert compare(SIGN_ERROR, SIGN_ERROR) == []
    assert compare(SWEEP, SWEEP) == []


def test_another_blas_kernel_matches():
    assert compare(SIGN_ERROR, HASWELL) == []
    assert compare(SWEEP, SWEEP_SANDYBRIDGE) == []
    other = DIFFERENCE_MATRIX.replace("  9.14e-13  -1.09e-12  -4.54e-13  -1.82e-11",
                                      "  8.87e-12  -4.22e-13  -4.54e-13   7.2e-12")
    assert compare(DIFFERENCE_MATRIX, other.replace("6.8e-12", "5.7e-12")) == []


def test_layout_and_timings_are_not_content():
    padded = "\n".join(line + "   " for line in HASWELL.splitlines()) + "\n\n"
    assert compare(SIGN_ERROR, padded) == []
    assert compare(SIGN_ERROR, HASWELL.replace("(0.03 s)", "(12.50 s)")) == []
    assert compare("1 passed in 0.84s", "1 passed in 1.16s") == []
    # a ratio one digit longer moves rich's wrap (at 160 columns): the words are the same
    words = "worst entry (2, 3): analytic -0.368571, numeric 0.368571 " * 3
    sample = f"{words[:160 - len('(999999999× the')]}(999999999× the\nnoise)"
    assert len(sample.splitlines()[0]) == 160
    output = f"{words[:160 - len('(999999999× the')]}(1000000001×\nthe noise)"
    assert compare(sample, output) == []
    assert compare(sample, output.replace("the noise", "the noise, twice")) != []


@pytest.mark.parametrize("change, what", [
    (("7.4e-01  FAIL", "7.4e-01  pass"), "a status"),
    (("1.2e-11  3.5e-11  pass", "1.2e-11  3.5e-11  warn"), "a status"),
    (("3.4e-11  1.1e-09  1.2e-11", "1.0e-03  1.1e-09  1.2e-11"), "a 1e-3 error where 1e-11 was"),
    (("4.4e-11  8.7e-10  1.0e-01", "4.4e-11  8.7e-10  2.0e-01"), "an error above the noise"),
    (("1.7e-01  1.3e-09        —  7.4e-01", "1.7e-01  1.3e-09        —  7.3e-01"),
     "a FAIL row's max abs"),
    (("7.3e-09  7.4e-09  7.3e-09", "7.3e-08  7.4e-09  7.3e-09"), "an error 10× its noise"),
    (("1.7e-01  1.3e-09", "1.7e-01  1.3e-08"), "the noise, tenfold"),
    (("(6,5)  (6,5)    8.3e-12", "(6,5)  (5,6)    8.3e-12"), "a shape"),
    (("wrong at the 9 entries", "wrong at the 8 entries"), "a count in a diagnosis"),
    (("right only where the activation is active (Z > 0)", "sign flipped"), "a diagnosis"),
    (("transposed? its transpose matches", "not summed over the batch axis?"), "a diagnosis"),
    (("591115270× the noise", "5911152700× the noise"), "N× the noise, tenfold"),
    (("analytic -0.368571", "analytic -0.368572"), "a gradient value"),
    (("186 comparisons", "187 comparisons"), "a count"),
    (("1 config: 0 passed, 1 failed", "1 config: 1 passed, 0 failed"), "the summary"),
    (("\n1 config:", "\nextra line\n1 config:"), "a line more"),
])
def test_a_real_change_is_caught(change, what):
    old, new = change
    assert old in HASWELL, what
    assert compare(SIGN_ERROR, HASWELL.replace(old, new)) != [], what


@pytest.mark.parametrize("old, new", [
    ("1e-01      5.4e-02", "1e-01      6.4e-02"),            # truncation side: exact
    ("1e-03      6.4e-09", "1e-03      6.4e-07"),
    ("1e-12      8.4e-04", "1e-12      8.4e-02"),            # rounding side, but 100×
    ("1e-09 |       c", "1e-09 |        c"),               # a mark in another column
    ("at h = 1e-04", "at h = 1e-06"),                      # best step two decades away
    ("h^1.98: the gradient is right (slope 2)", "h^1.02: the gradient is wrong (slope 1)"),
])
def test_a_real_change_of_the_sweep_is_caught(old, new):
    assert old in SWEEP
    assert compare(SWEEP, SWEEP_SANDYBRIDGE.replace(old, new) if old in SWEEP_SANDYBRIDGE
                   else SWEEP.replace(old, new)) != []


def test_a_mark_of_the_figure_three_rows_away_is_caught():
    moved = SWEEP.replace("1e-04 |       f      ", "1e-04 |              ").replace(
        "1e-07 |                f", "1e-07 |       f        f")
    assert compare(SWEEP, moved) != []
    merged = SWEEP.replace("1e-06 |             f           *  c", "1e-06 |             f           *")
    assert compare(SWEEP, merged) == []          # merged into the `*` a row above, as it happens


def test_an_ellipsis_stands_for_any_lines():
    lines = SIGN_ERROR.splitlines()
    elided = "\n".join(lines[:3] + ["..."] + lines[-3:])
    assert compare(elided, HASWELL) == []
    assert compare("\n".join(lines[:3] + ["..."]), HASWELL) == []
    assert compare("\n".join(["..."] + lines[8:9] + ["..."]), HASWELL) == []
    assert compare(elided, HASWELL.replace("1 config: 0 passed, 1 failed", "1 config: 1 passed")) != []
    # the lines around an ellipsis are still compared up to rounding, and in order
    assert compare("\n".join(["..."] + lines[5:6] + ["..."]), HASWELL.replace("7.4e-01  FAIL",
                                                                            "7.4e-01  pass")) != []
    assert compare("\n".join(["...", lines[9], "...", lines[3], "..."]), HASWELL) != []


def _document(noise=1.4e-09, rel_error=8.6e-12, status="inherited", reason="566218910× the noise",
              evaluations=358):
    check = {"status": "pass", "rel_error": rel_error, "max_abs_error": 5.4e-11,
             "worst_index": [2, 3], "noise": noise, "entries": 20, "reason": None}
    return {"schema_version": 1, "configs": [{"status": "FAIL", "evaluations": evaluations, "rows": [
        {"label": "1", "tensor": "x", "status": status, "reason": reason, "isolated": check,
         "network": {**check, "rel_error": 0.1, "max_abs_error": 0.7, "noise": 2e-9}}]}]}


def test_json_documents_match_up_to_rounding():
    a = _document()
    b = _document(noise=1.3e-09, rel_error=4.4e-11, reason="591115270× the noise")
    b["configs"][0]["rows"][0]["isolated"].update(max_abs_error=2.4e-10, worst_index=[0, 1])
    assert json_differences(a, a) == []
    assert json_differences(a, b) == []


@pytest.mark.parametrize("change", [
    {"status": "FAIL"}, {"rel_error": 1e-3}, {"noise": 1.4e-08}, {"evaluations": 359},
    {"reason": "5662189100× the noise"},
])
def test_json_documents_with_a_real_change_differ(change):
    assert json_differences(_document(), _document(**change)) != []


def test_json_numbers_above_the_noise_are_exact():
    a, b = _document(), _document()
    b["configs"][0]["rows"][0]["network"]["max_abs_error"] = 0.71
    assert json_differences(a, b) != []
