import subprocess
import sys
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from problogreg.cli import main, read_table


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
    ],
)
def test_bad_input_gives_one_line_error_and_exit_2(tmp_path, make_args, message):
    pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]}).to_csv(
        tmp_path / "ok.csv", index=False
    )
    pd.DataFrame({"x": [0.0, 1.0], "y": [1, 1]}).to_csv(tmp_path / "one.csv", index=False)
    pd.DataFrame({"x": [0.0, None, 2.0], "y": [0, 1, 0]}).to_csv(tmp_path / "gaps.csv", index=False)
    result = run_cli(*make_args(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
