"""End-to-end: `problogreg study --quick` writes the report, figures and tables."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from problogreg.study import markdown_table

EXPECTED_FIGURES = {
    "comparison",
    "calibration",
    "forest",
    "laplace_vs_nuts",
    "nuts_rank",
    "loss_surface",
}
MODELS = {"MAP", "Laplace", "NUTS", "LDA", "NaiveBayes"}


def run_study(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "problogreg", "study", "--quick", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module")
def two_feature_study(tmp_path_factory):
    """A quick study on a 2-feature dataset, so decision regions are drawn too."""
    out = tmp_path_factory.mktemp("study")
    result = run_study("--dataset", "two_gaussians", "--out", str(out / "report"), cwd=out)
    return result, out / "report"


@pytest.mark.slow
def test_study_prints_the_comparison_and_diagnostics(two_feature_study):
    result, _ = two_feature_study
    assert result.returncode == 0, result.stderr
    for step in ("[1/5] fitting MAP", "[5/5] fitting NaiveBayes"):
        assert step in result.stdout
    for section in ("Model comparison", "Diagnostics", "Laplace vs NUTS", "NUTS max R-hat"):
        assert section in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_study_writes_report_figures_and_tables(two_feature_study):
    _, report = two_feature_study
    text = (report / "report.md").read_text()
    for figure in EXPECTED_FIGURES | {"decision_regions"}:
        png = report / f"{figure}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
        assert f"({figure}.png)" in text
    comparison = pd.read_csv(report / "comparison.csv", index_col=0)
    assert set(comparison.index) == MODELS
    assert comparison["weight"].sum() == pytest.approx(1.0)
    assert (comparison["elpd_diff"] <= 0).all() and comparison["elpd_diff"].max() == 0
    assert comparison["test_accuracy"].between(0, 1).all()
    diagnostics = pd.read_csv(report / "diagnostics.csv", index_col=0)
    assert "NUTS divergences" in diagnostics.index
    agreement = pd.read_csv(report / "laplace_vs_nuts.csv", index_col=0)
    assert list(agreement.index) == ["intercept", "coef[x1]", "coef[x2]"]
    # n = 140, two features: the posterior is near Gaussian, so the sds agree closely;
    # the Laplace mean is the mode, which a skewed logistic posterior puts a fraction of
    # an sd nearer zero than its mean (misaligned parameters would be several sd apart).
    assert agreement["sd_ratio"].between(0.85, 1.15).all()
    assert agreement["mean_diff_sd"].abs().max() < 0.5
    coefficients = pd.read_csv(report / "map_coefficients.csv", index_col=[0, 1])
    assert {"estimate", "std_error", "p_value"} <= set(coefficients.columns)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--csv", "missing.csv", "--target", "y"], "no such file"),
        (["--csv", "data.csv", "--target", "nope"], "not in"),
        (["--csv", "single.csv", "--target", "y"], "single value"),
        (["--dataset", "titanic"], "unknown dataset"),
    ],
)
def test_bad_study_input_is_one_line_and_exit_2(tmp_path, args, message):
    pd.DataFrame({"x": np.arange(6.0), "y": [0, 1] * 3}).to_csv(tmp_path / "data.csv", index=False)
    pd.DataFrame({"x": np.arange(4.0), "y": [1] * 4}).to_csv(tmp_path / "single.csv", index=False)
    result = run_study(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_markdown_table_rounds_and_keeps_the_index():
    frame = pd.DataFrame({"a": [1.23456, np.nan], "b": ["x", "y"]}, index=["m1", "m2"])
    assert markdown_table(frame, digits=2).splitlines() == [
        "|  | a | b |",
        "|---|---|---|",
        "| m1 | 1.23 | x |",
        "| m2 |  | y |",
    ]


@pytest.mark.slow
def test_study_on_a_csv_with_a_categorical_column_and_three_classes(tmp_path):
    from problogreg import datasets

    X, y = datasets.load("three_class", n_samples=150, random_state=2)
    frame = X.assign(site=np.where(X["x1"] > 0, "east", "west"), species=y.map(str) + "-type")
    frame.to_csv(tmp_path / "field.csv", index=False)
    result = run_study("--csv", "field.csv", "--target", "species", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    coefficients = pd.read_csv(tmp_path / "out" / "map_coefficients.csv", index_col=[0, 1])
    # Symmetric multiclass (default prior): every class has a row, the one-hot column too.
    assert set(coefficients.index.get_level_values("class")) == {"0-type", "1-type", "2-type"}
    assert "site_west" in set(coefficients.index.get_level_values("term"))
    comparison = pd.read_csv(tmp_path / "out" / "comparison.csv", index_col=0)
    assert set(comparison.index) == MODELS
