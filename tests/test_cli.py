import subprocess
import sys
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from problogreg.cli import main, read_table
from problogreg.models.map import MAPLogisticRegression


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "problogreg", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_fit_prints_the_coefficient_table(capsys):
    assert main(["fit", "--dataset", "challenger"]) == 0
    out = capsys.readouterr().out
    assert "temperature_f" in out and "std_error" in out and "converged=True" in out
    assert "classes ['no', 'yes'];" in out


def test_numeric_classes_print_as_written(tmp_path, capsys):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"dose": rng.normal(size=40), "outcome": np.arange(40) % 2})
    path = tmp_path / "numeric.csv"
    frame.to_csv(path, index=False)
    assert main(["fit", "--csv", str(path), "--target", "outcome"]) == 0
    out = capsys.readouterr().out
    assert "classes [0, 1];" in out and "np.int64" not in out


def test_mle_on_challenger_matches_statsmodels(capsys):
    frame = pd.read_csv(resources.files("problogreg") / "data/challenger.csv")
    reference = sm.Logit(
        (frame["incident"] == "yes").astype(float), sm.add_constant(frame[["temperature_f"]])
    ).fit(disp=0)
    assert main(["fit", "--dataset", "challenger", "--mle"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "temperature_f" in line).split()
    assert float(row[1]) == pytest.approx(reference.params["temperature_f"], abs=1e-4)
    assert float(row[2]) == pytest.approx(reference.bse["temperature_f"], abs=1e-4)


def test_csv_with_categorical_column_is_one_hot_encoded(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "dose": rng.normal(size=60),
            "site": rng.choice(["a", "b", "c"], 60),
            "outcome": rng.choice(["alive", "dead"], 60),
        }
    )
    path = tmp_path / "trial.csv"
    frame.to_csv(path, index=False)
    X, y = read_table(str(path), "outcome")
    assert list(X.columns) == ["dose", "site_b", "site_c"]
    assert y.tolist() == frame["outcome"].tolist()
    result = run_cli("fit", "--csv", str(path), "--target", "outcome")
    assert result.returncode == 0, result.stderr
    assert "site_b" in result.stdout


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda p: ["fit", "--csv", str(p / "missing.csv"), "--target", "y"], "no such file"),
        (lambda p: ["fit", "--csv", str(p / "ok.csv"), "--target", "nope"], "not in"),
        (lambda p: ["fit", "--csv", str(p / "one.csv"), "--target", "y"], "single value"),
        (lambda p: ["fit", "--csv", str(p / "gaps.csv"), "--target", "y"], "lines 3"),
        (lambda p: ["fit", "--csv", str(p / "ok.csv")], "--target"),
        (lambda p: ["fit", "--dataset", "titanic"], "unknown dataset"),
        # Issue 16, item 8: these used to say "No objects to concatenate" and "target
        # column 'y' has a single value".
        (
            lambda p: ["fit", "--csv", str(p / "target-only.csv"), "--target", "y"],
            "has no feature columns: 'y' is its only column",
        ),
        (
            lambda p: ["fit", "--csv", str(p / "header-only.csv"), "--target", "y"],
            "has a header line but no data rows",
        ),
        (lambda p: ["fit", "--csv", str(p / "empty.csv"), "--target", "y"], "is empty"),
        (
            lambda p: ["fit", "--csv", str(p / "ok.csv"), "--target", "y", "--drop", "x"],
            "no feature columns: 'y' is its only column after --drop",
        ),
        (lambda p: ["fit", "--dataset", "iris", "--drop", "x"], "--drop applies to --csv only"),
        # Issue 16, item 1: RuntimeWarnings and half a coefficient table, then an error.
        (
            lambda p: ["fit", "--csv", str(p / "huge.csv"), "--target", "y"],
            "larger than 1e+150 in magnitude in columns ['x']",
        ),
    ],
)
def test_bad_input_gives_one_line_error_and_exit_2(tmp_path, make_args, message):
    pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]}).to_csv(
        tmp_path / "ok.csv", index=False
    )
    pd.DataFrame({"y": [0, 1, 0, 1]}).to_csv(tmp_path / "target-only.csv", index=False)
    (tmp_path / "header-only.csv").write_text("x,y\n")
    (tmp_path / "empty.csv").write_text("")
    pd.DataFrame({"x": [0.0, 1e154, 2e154, 3e154], "y": [0, 1, 0, 1]}).to_csv(
        tmp_path / "huge.csv", index=False
    )
    pd.DataFrame({"x": [0.0, 1.0], "y": [1, 1]}).to_csv(tmp_path / "one.csv", index=False)
    pd.DataFrame({"x": [0.0, None, 2.0], "y": [0, 1, 0]}).to_csv(tmp_path / "gaps.csv", index=False)
    result = run_cli(*make_args(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "Warning" not in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def free_text_csv(path, n=150):
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "dose": rng.normal(size=n),
            "comment": [f"note {i % 119}" for i in range(n)],
            "site": rng.choice(["a", "b", "c"], n),
            "outcome": rng.choice(["alive", "dead"], n),
        }
    ).to_csv(path, index=False)


def test_free_text_column_draws_a_warning_that_says_how_to_drop_it(tmp_path):
    # Issue 16, item 10: 119 distinct values were one-hot encoded silently (training
    # accuracy 1.000).
    from problogreg.cli import MAX_TEXT_LEVELS, HighCardinalityWarning

    assert MAX_TEXT_LEVELS == 20
    free_text_csv(tmp_path / "notes.csv")
    with pytest.warns(HighCardinalityWarning, match="'comment' .* 119 distinct values") as caught:
        X, _ = read_table(str(tmp_path / "notes.csv"), "outcome")
    assert len(caught) == 1  # 'site' (3 levels) is an ordinary categorical column
    assert "--drop comment" in str(caught[0].message)
    assert X.shape[1] == 1 + 118 + 2
    result = run_cli("fit", "--csv", str(tmp_path / "notes.csv"), "--target", "outcome")
    assert result.returncode == 0
    warning = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("warning: column 'comment'")
    assert "--drop comment" in warning[0]


def test_drop_leaves_a_column_out(tmp_path):
    free_text_csv(tmp_path / "notes.csv")
    X, _ = read_table(str(tmp_path / "notes.csv"), "outcome", drop=["comment"])
    assert list(X.columns) == ["dose", "site_b", "site_c"]
    result = run_cli(
        "fit", "--csv", str(tmp_path / "notes.csv"), "--target", "outcome", "--drop", "comment"
    )
    assert result.returncode == 0 and result.stderr == ""
    assert "comment" not in result.stdout and "site_b" in result.stdout


def test_few_rows_with_as_many_levels_warn_too(tmp_path):
    pd.DataFrame({"x": np.arange(8.0), "id": list("abcdefgh"), "y": [0, 1] * 4}).to_csv(
        tmp_path / "ids.csv", index=False
    )
    with pytest.warns(UserWarning, match="'id' .* 8 distinct values in 8 rows"):
        read_table(str(tmp_path / "ids.csv"), "y")


def test_an_internal_error_is_not_a_usage_error(monkeypatch, capsys):
    # Issue 16: every ValueError, bugs included, used to be reported as a usage error.
    def broken(self, *args, **kwargs):
        raise ValueError("index out of sync")

    monkeypatch.setattr(MAPLogisticRegression, "summary", broken)
    assert main(["fit", "--dataset", "challenger"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("problogreg fit: internal error: ValueError: index out of sync")
    assert "--debug" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["fit", "--dataset", "challenger", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "index out of sync" in err


def test_a_model_refusing_the_data_stays_a_usage_error(tmp_path, capsys):
    # Separable data with --mle: the estimator's error is about the user's data.
    pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]}).to_csv(
        tmp_path / "separable.csv", index=False
    )
    assert main(["fit", "--csv", str(tmp_path / "separable.csv"), "--target", "y", "--mle"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("problogreg fit: error: ") and len(err.strip().splitlines()) == 1


def test_help_describes_exit_statuses_and_the_new_options():
    result = run_cli("study", "--help")
    text = " ".join(result.stdout.split())
    assert "--debug" in text and "--drop COLUMN" in text
    assert "1 internal error" in text and "2 bad input" in text
    assert "checked before any fitting" in text


@pytest.fixture
def dose_csv(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "dose": rng.uniform(1, 10, size=80),
            "site": rng.choice(["a", "b"], 80),
            "outcome": rng.choice(["alive", "dead"], 80),
        }
    )
    frame["dead"], frame["alive"] = 3, 2
    path = tmp_path / "dose.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_fit_with_a_formula_names_coefficients_by_terms(dose_csv, capsys):
    path, frame = dose_csv
    assert main(["fit", "--csv", str(path), "--formula", "outcome ~ log(dose) * C(site)"]) == 0
    out = capsys.readouterr().out
    assert "log(dose):C(site)[T.b]" in out and "C(site)[T.b]" in out
    X = pd.DataFrame({"log(dose)": np.log(frame.dose), "C(site)[T.b]": frame.site == "b"})
    X["log(dose):C(site)[T.b]"] = X["log(dose)"] * X["C(site)[T.b]"]
    reference = MAPLogisticRegression().fit(X.astype(float), frame.outcome)
    row = next(line for line in out.splitlines() if line.split()[:1] == ["log(dose)"]).split()
    assert float(row[1]) == pytest.approx(reference.coef_[0, 0], abs=1e-4)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--formula", "dead + alive ~ dose"], "binomial response"),
        (["--formula", "outcome ~ dose", "--target", "outcome"], "leave out --target"),
        (["--formula", "outcome ~ nosuch"], "--formula: Cannot build the design"),
    ],
)
def test_formula_usage_errors(dose_csv, capsys, extra, message):
    path, _ = dose_csv
    assert main(["fit", "--csv", str(path), *extra]) == 2
    assert message in capsys.readouterr().err
