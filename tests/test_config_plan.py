"""Configs that misuse a library layer: exit 2 and one exact, located message, never a traceback."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app

CASES = {
    "conv_on_flat_input": (
        "input: {shape: [784], batch: 2}\nlayers: [{type: conv2d, filters: 4, kernel: 3}]\nloss: mse\n",
        "net.yaml:2:10: layers[0]: conv2d needs (C, H, W) input per example, got (784,): add a "
        "reshape layer before it"),
    "batchnorm_in_columns_layout": (
        "layout: columns\ninput: {shape: [4], batch: 2}\nlayers: [{type: batchnorm}]\nloss: mse\n",
        "net.yaml:3:10: layers[0]: `batchnorm` supports layout rows, not columns"),
    "inner_layer_shape_error_is_located_inside_the_block": (
        "input: {shape: [6], batch: 2}\nlayers:\n  - type: residual\n    layers:\n"
        "      - {type: dense, units: 6}\n      - {type: conv2d, filters: 2, kernel: 3}\nloss: mse\n",
        "net.yaml:6:9: layers[0].layers[1]: conv2d needs (C, H, W) input per example, got (6,): add a "
        "reshape layer before it"),
    "inner_layer_unknown_type": (
        "input: {shape: [6], batch: 2}\nlayers:\n  - type: residual\n    layers:\n"
        "      - {type: dense, units: 6}\n      - {type: dropuot}\nloss: mse\n",
        "net.yaml:6:10: layers[0].layers[1].type: unknown layer type `dropuot`: did you mean "
        "`dropout`? valid types: {layer_types}"),
    "kernel_too_large": (
        "input: {shape: [3, 4, 4], batch: 2}\nlayers:\n  - {type: conv2d, filters: 2, kernel: 7}\nloss: mse\n",
        "net.yaml:3:5: layers[0]: conv2d: kernel (7, 7) (dilation (1, 1)) does not fit input (4, 4) "
        "with padding (0, 0)"),
    "heads_do_not_divide_d_model": (
        "input: {shape: [4, 6], batch: 2}\nlayers:\n  - {type: attention, heads: 4}\nloss: mse\n",
        "net.yaml:3:5: layers[0]: attention: D = 6 must be a multiple of heads = 4"),
    "negative_padding": (
        "input: {shape: [3, 4, 4], batch: 2}\nlayers:\n  - {type: conv2d, filters: 2, kernel: 3, "
        "padding: -1}\nloss: mse\n",
        None),
    "lstm_on_flat_input": (
        "input: {shape: [8], batch: 2}\nlayers:\n  - {type: lstm, hidden: 3}\nloss: mse\n",
        "net.yaml:3:5: layers[0]: lstm needs a sequence (T, n) per example, got (8,): add a reshape "
        "layer before it"),
    "temporal_loss_on_flat_scores": (
        "input: {shape: [8], batch: 2}\nlayers:\n  - {type: dense, units: 3}\n"
        "loss: temporal_softmax_cross_entropy\n",
        "net.yaml:4:1: loss: temporal_softmax_cross_entropy needs scores of shape (T, V) with V ≥ 2, "
        "got (3,): end the network with a linear layer (the last layer outputs (3,) per example)"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_misuse_is_a_located_error(name, tmp_path, monkeypatch, builtins_only):
    from gradcheck_cli.layers.catalog import registered

    text, expected = CASES[name]
    (tmp_path / "net.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(app, ["check", "net.yaml"])
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.count("error: ") == 1
    if expected is None:
        assert result.stderr.startswith("error: net.yaml:3:")
    else:
        expected = expected.replace("{layer_types}", ", ".join(registered("layer")))
        assert result.stderr == f"error: {expected}\n"
