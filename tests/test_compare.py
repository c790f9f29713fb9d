import arviz as az
import matplotlib
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from problogreg import MAPLogisticRegression
from problogreg.core.validation import encode_labels
from problogreg.evaluation.agreement import agreement
from problogreg.evaluation.compare import compare, expected_calibration_error, heldout_scores
from problogreg.evaluation.loo import approximate_loo

matplotlib.use("Agg")


def simulate(n_classes, n=80, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    logits = X @ rng.normal(size=(n_classes, 2)).T
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(n_classes, p=p) for p in proba])
    return X, y


def brute_force_loo(make_model, X, y):
    n = len(y)
    elpd = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        model = make_model().fit(X[keep], y[keep])
        elpd[i] = model.predict_log_proba(X[i : i + 1])[0, y[i]]
    return elpd


@pytest.mark.parametrize(
    ("n_classes", "kwargs"),
    [
        (2, {}),
        (3, {}),
        (3, {"intercept_prior_scale": None}),
        (3, {"prior_scale": None, "intercept_prior_scale": None}),
    ],
)
def test_approximate_loo_tracks_brute_force_refits(n_classes, kwargs):
    X, y = simulate(n_classes)
    model = MAPLogisticRegression(**kwargs).fit(X, y)
    exact = brute_force_loo(lambda: MAPLogisticRegression(**kwargs), X, y)
    approx = approximate_loo(model, X, y, resolve=False)
    plug_in = model.predict_log_proba(X)[np.arange(len(y)), y]
    # The plug-in score is optimistic by about p_loo (~3 nats here); one Newton
    # step must remove nearly all of that bias, observation by observation.
    bias_plug_in = plug_in.sum() - exact.sum()
    assert bias_plug_in > 2.0
    assert abs(approx.elpd - exact.sum()) < 0.1 * bias_plug_in
    assert np.max(np.abs(approx.elpd_i.values - exact)) < 0.1
    assert approx.p == pytest.approx(plug_in.sum() - approx.elpd)
    assert approx.se == pytest.approx(np.sqrt(len(y) * approx.elpd_i.values.var()))


def test_compare_ranks_models_like_arviz():
    X, y = simulate(2, n=120)
    models = {
        "map": MAPLogisticRegression().fit(X, y),
        "one_feature": MAPLogisticRegression().fit(X[:, :1], y),
    }
    with pytest.raises(ValueError, match="features"):
        compare(models, X, y)
    full = MAPLogisticRegression().fit(X, y)
    weak = MAPLogisticRegression(prior_scale=0.01).fit(X, y)
    table = compare({"full": full, "weak": weak}, X, y)
    reference = az.compare(
        {"full": approximate_loo(full, X, y), "weak": approximate_loo(weak, X, y)},
        round_to="none",
    )
    assert list(table.index) == list(reference.index)
    np.testing.assert_allclose(table["elpd_loo"], reference["elpd"])
    np.testing.assert_allclose(table["weight"], reference["weight"])
    assert table["weight"].sum() == pytest.approx(1.0)
    assert table["elpd_diff"].iloc[0] == 0.0
    assert table.index[0] == "full"
    assert set(table["loo_method"]) == {"exact LOO: 120 refits of the point estimate (cheap)"}
    assert not table["pareto_k_warning"].any()
    unresolved = compare({"full": full, "weak": weak}, X, y, resolve_loo=False)
    assert set(unresolved["loo_method"]) == {"approximate LOO of the point estimate"}


def test_compare_with_test_data_adds_heldout_scores():
    X, y = simulate(3, n=150)
    labels = np.array(["a", "b", "c"])[y]
    models = {
        "symmetric": MAPLogisticRegression().fit(X[:100], labels[:100]),
        "mle": MAPLogisticRegression(prior_scale=None).fit(X[:100], labels[:100]),
    }
    table = compare(models, X[:100], labels[:100], X[100:], labels[100:])
    for name, model in models.items():
        proba = model.predict_proba(X[100:])
        assert table.loc[name, "test_log_loss"] == pytest.approx(
            log_loss(labels[100:], proba, labels=model.classes_)
        )
        assert table.loc[name, "test_accuracy"] == pytest.approx(
            accuracy_score(labels[100:], model.predict(X[100:]))
        )


def test_heldout_brier_is_the_multiclass_sum_over_classes():
    X, y = simulate(2, n=60)
    model = MAPLogisticRegression().fit(X, y)
    scores = heldout_scores(model, X, y)
    proba = model.predict_proba(X)
    # Brier (1950): sum over classes; for two classes twice the one-column score.
    assert scores["test_brier"] == pytest.approx(2 * brier_score_loss(y, proba[:, 1]))


def test_expected_calibration_error_by_hand():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    codes = np.array([0, 1, 1, 1])
    # bins: 0.9 -> [0.9,1.0): acc 1, conf 0.9; 0.8 -> acc 0, conf 0.8;
    # 0.7 -> acc 1, conf 0.7; 0.55 -> acc 1, conf 0.55.
    expected = (0.1 + 0.8 + 0.3 + 0.45) / 4
    assert expected_calibration_error(proba, codes) == pytest.approx(expected)


def test_unknown_labels_are_named():
    X, y = simulate(2, n=40)
    model = MAPLogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="not fitted on: 7; the fitted classes are 0, 1"):
        encode_labels(model.classes_, np.where(y == 1, 7, y))


def test_compare_needs_two_models_and_paired_test_data():
    X, y = simulate(2, n=40)
    model = MAPLogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="at least two"):
        compare({"only": model}, X, y)
    with pytest.raises(ValueError, match="both"):
        compare({"a": model, "b": model}, X, y, X_test=X)


def gaussian_tree(mean, sd, seed, n_draws=4000):
    rng = np.random.default_rng(seed)
    coef = mean[1:] + sd[1:] * rng.standard_normal((1, n_draws, len(mean) - 1))
    intercept = mean[0] + sd[0] * rng.standard_normal((1, n_draws))
    return az.from_dict(
        {"posterior": {"coef": coef, "intercept": intercept}},
        coords={"feature": ["a", "b"]},
        dims={"coef": ["feature"]},
    )


def test_agreement_accepts_matching_posteriors_and_flags_shifted_ones():
    mean, sd = np.array([0.5, 1.0, -2.0]), np.array([0.2, 0.3, 0.5])
    same = agreement(gaussian_tree(mean, sd, 1), gaussian_tree(mean, sd, 2))
    assert same.good_enough, same.verdict
    assert same.verdict.startswith("Good enough")
    assert list(same.table.index) == ["intercept", "coef[a]", "coef[b]"]
    shifted = agreement(gaussian_tree(mean + 0.5 * sd, sd, 1), gaussian_tree(mean, sd, 2))
    assert not shifted.good_enough
    np.testing.assert_allclose(shifted.table["mean_diff_sd"], 0.5, atol=0.06)
    wider = agreement(gaussian_tree(mean, 1.5 * sd, 1), gaussian_tree(mean, sd, 2))
    assert not wider.good_enough
    np.testing.assert_allclose(wider.table["sd_ratio"], 1.5, rtol=0.06)
    assert shifted.wasserstein > same.wasserstein


def test_package_compare_stays_the_function_after_submodule_import():
    import importlib

    import problogreg

    compare_module = importlib.import_module("problogreg.evaluation.compare")
    agreement_module = importlib.import_module("problogreg.evaluation.agreement")
    assert problogreg.compare is compare_module.compare
    assert problogreg.agreement is agreement_module.agreement


def test_pareto_k_is_reported_only_for_importance_sampling():
    from problogreg import NaiveBayes

    X, y = simulate(2, n=60)
    table = compare({"map": MAPLogisticRegression().fit(X, y), "nb": NaiveBayes().fit(X, y)}, X, y)
    assert table["max_pareto_k"].isna().all()
    assert set(table["loo_method"]) == {
        "exact LOO",
        "exact LOO: 60 refits of the point estimate (cheap)",
    }
