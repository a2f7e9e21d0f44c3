"""render.py: a kink row shows the error of its other entries and the number of kinks, not the
error over all entries (which would read like a bug under status `kink`); JSON has both."""
from __future__ import annotations

import json
import re

from rich.console import Console

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.report.junit import rel_text
from gradcheck_cli.report.table import comparison_err, table
from gradcheck_cli.results import Comparison, Status

CONVNET = """name: convnet
seed: 0
input: {shape: [3, 8, 8], batch: 2}
layers:
  - {type: conv2d, filters: 4, kernel: 3, padding: 1, activation: relu}
  - {type: maxpool2d, kernel: 2}
  - {type: flatten}
  - {type: dense, units: 5}
loss: softmax_cross_entropy
"""


def test_the_error_cell_of_a_comparison():
    assert comparison_err(None) == "—"
    assert comparison_err(Comparison(Status.PASS, rel_error=2.04e-11, rel_error_excluding_kinks=2.04e-11)) == "2.0e-11"
    kink = Comparison(Status.KINK, rel_error=0.24, kinks=28, rel_error_excluding_kinks=3.9e-11)
    assert comparison_err(kink) == "3.9e-11 k28"


def test_a_kink_row_shows_the_other_entries_error_and_the_kink_count():
    result = check_network(build_network(spec_from_text(CONVNET)))
    row = next(r for r in result.rows if r.label == "2")
    iso = row.isolated
    assert row.status is Status.KINK and iso.kinks > 0
    assert iso.rel_error > 1e-3 and iso.rel_error_excluding_kinks < 1e-8   # all entries vs the rest
    console = Console(width=200, record=True)
    console.print(table(result))
    line = next(ln for ln in console.export_text().splitlines() if " maxpool2d " in ln)
    found = re.search(r"(\d\.\de-\d\d) k(\d+) ", line)
    assert found and int(found.group(2)) == iso.kinks
    assert abs(float(found.group(1)) - iso.rel_error_excluding_kinks) <= 0.051 * iso.rel_error_excluding_kinks
    data = json.loads(json.dumps(result.to_dict()))
    fields = next(r for r in data["rows"] if r["label"] == "2")["isolated"]
    assert fields["kinks"] == iso.kinks
    assert fields["rel_error_excluding_kinks"] == iso.rel_error_excluding_kinks
    assert fields["rel_error"] == iso.rel_error


def test_annotations_give_the_other_entries_error_of_a_kink_row():
    kink = Comparison(Status.KINK, rel_error=0.24, kinks=28, rel_error_excluding_kinks=3.9e-11)
    assert rel_text(kink) == "3.90e-11 (28 entries at a kink left out)"
    assert rel_text(Comparison(Status.PASS, rel_error=1e-11, rel_error_excluding_kinks=1e-11)) == "1.00e-11"
    assert rel_text(None) == "—"


def test_a_quiet_line_gives_the_error_the_verdict_read():
    from gradcheck_cli.report.table import quiet_lines
    from gradcheck_cli.results import ConfigResult, Row

    iso = Comparison(Status.WARN, rel_error=0.31, kinks=6, rel_error_excluding_kinks=2.0e-6)
    row = Row(label="2", index=2, layer_type="maxpool2d", line=7, tensor="x", input_shape=(2, 4),
              output_shape=(2, 2), tensor_shape=(2, 4), isolated=iso, network=None,
              status=Status.WARN, reason="relative error 2.0e-06 is above 1e-07 (pass) but below 1e-05")
    result = ConfigResult(path="net.yaml", name="n", status=Status.WARN, rows=[row])
    assert [t.plain for t in quiet_lines(result)] == [
        "net.yaml:7: layer 2 maxpool2d x: warn rel 2.0e-06 k6 — relative error 2.0e-06 is above "
        "1e-07 (pass) but below 1e-05"]
