"""``problogreg fit --parquet``: a Parquet data set streamed through Dask.

Reference: statsmodels' Logit (maximum likelihood and its standard errors) on the
same rows read into memory.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special

from problogreg.cli import main

pytest.importorskip("dask.dataframe")
pytest.importorskip("pyarrow")


@pytest.fixture
def parquet_dir(tmp_path):
    """Three Parquet files of one data set, with a text column to leave out."""
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(5.0, 3.0, size=n)})
    eta = 0.5 + frame["a"] - 0.2 * frame["b"]
    frame["y"] = (rng.random(n) < special.expit(eta)).astype(int)
    frame["note"] = "text"
    for part, rows in enumerate(np.array_split(np.arange(n), 3)):
        frame.iloc[rows].to_parquet(tmp_path / f"part{part}.parquet")
    return tmp_path, frame


def test_mle_matches_statsmodels(parquet_dir, capsys):
    path, frame = parquet_dir
    reference = sm.Logit(frame["y"], sm.add_constant(frame[["a", "b"]])).fit(disp=0)
    args = ["fit", "--parquet", str(path), "--target", "y", "--drop", "note", "--mle"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3000 samples, 2 features" in out and "converged=True" in out
    for term in ("a", "b"):
        # Table rows: "[class] term estimate std_error z p_value ci_lower ci_upper".
        row = next(line.split() for line in out.splitlines() if term in line.split()[:2])
        assert float(row[-6]) == pytest.approx(reference.params[term], abs=1e-4)
        assert float(row[-5]) == pytest.approx(reference.bse[term], abs=1e-4)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "non-numeric columns ['note']"),
        (["--drop", "y"], "is the target column"),
        (["--target", "nope"], "column 'nope' not in"),
        (["--csv", "x.csv"], "one of --csv and --parquet"),
        (["--formula", "y ~ a"], "--formula applies to --csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(parquet_dir, capsys, extra, message):
    path, _ = parquet_dir
    args = ["fit", "--parquet", str(path), "--target", "y", *extra]
    if "--target" in extra:
        args = ["fit", "--parquet", str(path), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_path_is_a_usage_error(tmp_path, capsys):
    assert main(["fit", "--parquet", str(tmp_path / "absent"), "--target", "y"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_wide_parquet_files_pair_features_and_target_block_by_block(tmp_path):
    """Many feature columns in several small files: Dask fuses the files of the one-column
    target into fewer partitions than those of the features (dask/dask#12193). The fit of
    frame.drop(columns="y") and frame["y"] still pairs them row for row, and equals the
    fit of the same rows in memory."""
    import dask.dataframe as dd

    from problogreg import MAPLogisticRegression

    rng = np.random.default_rng(3)
    n, d = 1200, 30
    frame = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"x{j}" for j in range(d)])
    frame["y"] = (rng.random(n) < special.expit(frame["x0"] - frame["x1"])).astype(int)
    for part, rows in enumerate(np.array_split(np.arange(n), 6)):
        frame.iloc[rows].to_parquet(tmp_path / f"part{part}.parquet")
    lazy = dd.read_parquet(str(tmp_path))
    X, y = lazy.drop(columns="y"), lazy["y"]
    fused = y.to_dask_array().numblocks[0] != X.to_dask_array().numblocks[0]
    if not fused:
        pytest.skip("this Dask does not fuse the target's partitions differently")
    model = MAPLogisticRegression().fit(X, y)
    in_memory = MAPLogisticRegression().fit(frame.drop(columns="y"), frame["y"])
    np.testing.assert_allclose(model.coef_, in_memory.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, in_memory.intercept_, rtol=1e-8, atol=1e-10)
