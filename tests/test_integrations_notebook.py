"""The notebook API: check_layer on functions, classes and instances, check_spec on dicts and text,
the report as data, text and HTML; and the shipped example notebook, executed with nbclient."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli import Layer, Status, check_layer, check_spec

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "notebook" / "check_in_a_notebook.ipynb"


def affine_forward(x, w, b):
    return x @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def affine_backward_missing_transpose(dout, cache):
    x, w, b = cache
    return dout @ w.T, dout.T @ x, dout.sum(axis=0)


def by_tensor(report):
    return {(r.label, r.tensor): r for r in report.rows}


def test_function_pair_passes_and_rows_are_data():
    report = check_layer(affine_forward, affine_backward, input_shape=(4,), batch=3,
                         params={"w": (4, 5), "b": (5,)})
    assert report.ok and report.status is Status.PASS
    assert [(r["label"], r["tensor"], r["status"]) for r in report.to_records()] == [
        ("1", "x", "pass"), ("1", "w", "pass"), ("1", "b", "pass"), ("loss", "x", "pass")]
    assert by_tensor(report)[("1", "w")].tensor_shape == (4, 5)


def test_function_pair_with_a_bug_fails_at_the_right_row():
    report = check_layer((affine_forward, affine_backward_missing_transpose), input_shape=(4,),
                         batch=3, params={"w": (4, 5), "b": (5,)})
    assert not report.ok
    rows = by_tensor(report)
    assert rows[("1", "w")].status is Status.FAIL
    assert "transposed?" in rows[("1", "w")].reason
    assert all(r.status is Status.PASS for k, r in rows.items() if k != ("1", "w"))


def test_text_and_html_show_the_table():
    report = check_layer(affine_forward, affine_backward_missing_transpose, input_shape=(4,),
                         batch=3, params={"w": (4, 5), "b": (5,)})
    text = str(report)
    assert "layer err" in text and "my_affine" in text and "FAIL" in text
    assert "transposed?" in text
    html = report._repr_html_()
    assert html.startswith("<pre") and "layer err" in html and "FAIL" in html


def test_parameterless_functions_and_a_missing_param():
    def relu_forward(x):
        return np.maximum(0, x), x

    def relu_backward(dout, x):
        return dout * (x > 0)

    assert check_layer(relu_forward, relu_backward, input_shape=(5,)).ok
    with pytest.raises(Exception, match=r"affine_forward takes parameters \(w, b\) after x; params= "
                                        r"must give a shape or an array for each; missing b"):
        check_layer(affine_forward, affine_backward, input_shape=(4,), params={"w": (4, 5)})


class Scale(Layer):
    """A = c·Z;  dZ = c·dA."""

    def __init__(self, c: float = 2.0) -> None:
        super().__init__()
        self.c = c

    def output_shape(self, input_shape):
        return input_shape

    def forward(self, z):
        return self.c * z, None

    def backward(self, da, cache):
        return self.c * da, {}


class ScaleWrong(Scale):
    def backward(self, da, cache):
        return da, {}


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_class_with_options_and_instance(layout):
    assert check_layer(Scale, input_shape=(3,), layout=layout, c=3.0).ok
    assert check_layer(Scale(c=0.5), input_shape=(3,), layout=layout).ok
    bad = check_layer(ScaleWrong, input_shape=(3,), layout=layout, c=3.0)
    assert by_tensor(bad)[("1", "x")].status is Status.FAIL


def test_rerunning_a_cell_with_a_fixed_layer_replaces_it():
    assert not check_layer(ScaleWrong, input_shape=(3,)).ok

    class ScaleWrong2(Scale):  # the "edited cell": same registered name below
        pass

    ScaleWrong2.__name__ = "ScaleWrong"
    assert check_layer(ScaleWrong2, input_shape=(3,)).ok


def test_check_spec_dict_text_and_errors():
    net = {"layout": "columns", "input": {"shape": [5], "batch": 4},
           "layers": [{"type": "dense", "units": 3, "activation": "relu"},
                      {"type": "dense", "units": 1, "activation": "sigmoid"}],
           "loss": "binary_cross_entropy"}
    assert check_spec(net).ok
    text = "input: {shape: [4], batch: 3}\nlayers:\n  - {type: dense, units: 2}\nloss: mse\n"
    assert check_spec(text).ok
    toml = '[input]\nshape = [4]\nbatch = 3\n\n[[layers]]\ntype = "dense"\nunits = 2\n\nloss = "mse"\n'
    toml = 'loss = "mse"\n' + toml.replace('\nloss = "mse"\n', "")
    assert check_spec(toml).ok
    bad = check_spec({**net, "loss": "msee"})
    assert bad.status is Status.ERROR and not bad.ok
    assert "unknown loss type `msee`: did you mean `mse`?" in str(bad)


NOTEBOOK_PLUGIN = """
import numpy as np
from gradcheck_cli import register


@register("notebook_halved_tanh")
class HalvedTanh:
    \"\"\"tanh, with dx off by a factor 1/2 (the bug to find).\"\"\"

    def __init__(self):
        self.params = {}

    def build(self, input_shape, rng):
        return input_shape

    def forward(self, x):
        out = np.tanh(x)
        return out, out

    def backward(self, dout, out):
        return 0.5 * dout * (1 - out ** 2), {}
"""


def test_check_spec_loads_the_specs_plugins_only_when_allowed(tmp_path, monkeypatch):
    """A spec's `plugins:` are code: refused with a located error that says how to allow them,
    loaded (relative to the working directory) with allow_plugins=True or when named in plugins."""
    from gradcheck_cli.layers.registry import unregister

    (tmp_path / "halved.py").write_text(NOTEBOOK_PLUGIN)
    monkeypatch.chdir(tmp_path)
    text = ("input: {shape: [3], batch: 2}\nplugins: [halved.py]\n"
            "layers:\n  - {type: dense, units: 3}\n  - {type: notebook_halved_tanh}\nloss: mse\n")
    try:
        refused = check_spec(text)
        assert refused.status is Status.ERROR
        assert refused.result.error == ("<config>:2:1: plugins: this config names plugins, which are "
                                        "Python code; gradcheck runs them only with allow_plugins=True "
                                        "(or pass the files in plugins=[...])")
        for report in (check_spec(text, allow_plugins=True), check_spec(text, plugins=["halved.py"])):
            assert report.status is Status.FAIL
            assert by_tensor(report)[("2", "x")].status is Status.FAIL
        missing = check_spec(text.replace("halved.py", "nope.py"), allow_plugins=True)
        assert missing.result.error.startswith("<config>:2:11: plugins[0]: plugin file 'nope.py' not found")
    finally:
        unregister("notebook_halved_tanh")


def test_example_notebook_runs_and_shows_tables():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    plain = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    # four reports: the affine pair, its buggy twin, the class and the network
    assert len(html) == 4 and all("layer err" in h for h in html)
    assert sum("FAIL" in h for h in html) == 1 and "transposed?" in html[1]
    assert any("[(&#x27;x&#x27;, &#x27;pass&#x27;)" in p or "('x', 'pass')" in p for p in plain)


def test_readme_notebook_snippet_runs():
    import re

    section = (ROOT / "docs" / "learners.md").read_text(encoding="utf-8")
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "check_layer(" in b)
    lines = snippet.rstrip().splitlines()
    namespace: dict = {}
    exec(compile("\n".join(lines[:-1]), "README", "exec"), namespace)
    assert eval(lines[-1], namespace).ok


def test_check_spec_has_the_same_resource_guard_as_the_command_line(monkeypatch):
    from gradcheck_cli import check_spec
    from gradcheck_cli.check import budget
    from gradcheck_cli.results import Status

    huge = {"input": {"shape": [4096], "batch": 8}, "loss": "mse",
            "layers": [{"type": "dense", "units": 4096}, {"type": "dense", "units": 4096}]}
    report = check_spec(huge)
    assert report.result.status is Status.ERROR
    assert "function evaluations (limit --max-evals 10,000,000)" in report.result.error
    # a lighter mode passes the same guard: shown under a lower limit on a small network (a
    # directional check of the 33M parameters above takes half a minute)
    monkeypatch.setattr(budget, "DEFAULT_MAX_EVALS", 1000)
    small = {"input": {"shape": [16], "batch": 4}, "loss": "mse",
             "layers": [{"type": "dense", "units": 16}, {"type": "dense", "units": 16}]}
    refused = check_spec(small)
    assert refused.result.status is Status.ERROR
    assert "function evaluations (limit --max-evals 1,000)" in refused.result.error
    assert check_spec(small, mode="directional").result.status is Status.PASS


def test_a_network_from_a_dict_shows_no_config_lines():
    """Lines of the YAML check_layer writes for itself would point at nothing the user wrote."""
    report = check_layer(affine_forward, affine_backward, input_shape=(4,), batch=3,
                         params={"w": (4, 5), "b": (5,)})
    assert all(r.line is None for r in report.rows)
    text = str(report)
    assert text.startswith("check_layer(affine_forward, affine_backward)  affine · seed 0")
    heading = next(line for line in text.splitlines() if "layer err" in line)
    assert heading.split()[:4] == ["#", "layer", "tensor", "in"]
    bad = check_spec({"input": {"shape": [3]}, "layers": [{"type": "dense", "units": -1}],
                      "loss": "mse"})
    assert bad.result.error == "layers[0].units: must be > 0, got -1"
    # text the user wrote keeps its lines
    bad = check_spec("input: {shape: [3]}\nlayers: [{type: dense, units: -1}]\nloss: mse\n")
    assert bad.result.error == "<config>:2:24: layers[0].units: must be > 0, got -1"
