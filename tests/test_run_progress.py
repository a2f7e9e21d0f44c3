"""The progress display names what it is checking: the check (isolated, then end to end), the
row's layer label and the tensor, so that its label never seems to jump back for no reason."""
from __future__ import annotations

from pathlib import Path

from gradcheck_cli.run.progress import ProgressReporter
from gradcheck_cli.run.pipeline import RunOptions, check_file

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    def __init__(self) -> None:
        self.labels: list[str] = []
        self.total = 0
        self.done = 0

    def start(self, path: str, total: int) -> None:
        self.total = total

    def advance(self, evaluations: int, what: str) -> None:
        self.done += evaluations
        if not self.labels or self.labels[-1] != what:
            self.labels.append(what)


def test_labels_name_the_check_the_layer_and_the_tensor():
    recorder = Recorder()
    result = check_file(ROOT / "configs" / "course_columns.yaml", RunOptions(progress=recorder))
    assert result.error is None
    labels = recorder.labels
    assert labels[:4] == ["isolated check, layer 1 x", "isolated check, layer 1 W",
                          "isolated check, layer 1 b", "isolated check, layer 1a x"]
    assert "isolated check, layer loss x" in labels
    isolated = [i for i, label in enumerate(labels) if label.startswith("isolated check, ")]
    end_to_end = [i for i, label in enumerate(labels) if label.startswith("end to end, ")]
    assert isolated and end_to_end and max(isolated) < min(end_to_end)
    assert "end to end, layer 1 W" in labels and "end to end, layer 3 b" in labels
    assert len(isolated) + len(end_to_end) == len(labels)
    assert recorder.done == result.probes  # progress counts probes, like the estimate it starts from


def test_reporter_shows_the_label_after_the_path():
    class Console:  # what rich's Progress needs of a console is not exercised: no bar before DELAY
        pass

    reporter = ProgressReporter(Console())
    reporter.start("net.yaml", 10)
    reporter.advance(3, "isolated check, layer 2 W")
    assert reporter.progress is None and reporter.done == 3
