import pytest

from lifelong import metrics

# Three domains; values chosen so every metric differs from the others.
R = [
    [0.1, 0.2, 0.0],  # before training
    [0.8, 0.3, 0.1],  # after domain 1
    [0.6, 0.9, 0.2],  # after domain 2
    [0.5, 0.7, 0.7],  # after domain 3
]


def test_average_and_learning_accuracy():
    assert metrics.average_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.7) / 3)
    assert metrics.learning_accuracy(R) == pytest.approx((0.8 + 0.9 + 0.7) / 3)


def test_forgetting_uses_the_best_earlier_score():
    # domain 1: max(0.8, 0.6) - 0.5 = 0.3; domain 2: max(0.9) - 0.7 = 0.2
    assert metrics.forgetting(R) == pytest.approx(0.25)


def test_forgetting_ignores_the_before_row():
    # A domain that scored higher before training than after must not count the before row.
    matrix = [[0.9, 0.0], [0.5, 0.0], [0.4, 0.6]]
    assert metrics.forgetting(matrix) == pytest.approx(0.1)


def test_backward_and_forward_transfer():
    assert metrics.backward_transfer(R) == pytest.approx(((0.5 - 0.8) + (0.7 - 0.9)) / 2)
    assert metrics.forward_transfer(R) == pytest.approx(((0.3 - 0.2) + (0.2 - 0.0)) / 2)


def test_single_domain_has_no_forgetting_or_transfer():
    matrix = [[0.1], [0.9]]
    assert metrics.forgetting(matrix) is None
    assert metrics.backward_transfer(matrix) is None
    assert metrics.forward_transfer(matrix) is None
    assert metrics.average_accuracy(matrix) == pytest.approx(0.9)


def test_general_retention_and_worst_point():
    canary = [0.77, 0.47, 0.6, 0.73]
    assert metrics.general_retention(canary) == pytest.approx(0.73 / 0.77)
    assert metrics.worst_general_retention(canary) == pytest.approx(0.47 / 0.77)


def test_retention_is_none_without_canary():
    assert metrics.general_retention(None) is None
    assert metrics.worst_general_retention([]) is None
    assert metrics.general_retention([0.0, 0.5]) is None


def test_learning_efficiency_counts_steps_to_ninety_percent_of_final():
    curve = [(0, 0.0), (10, 0.5), (20, 0.85), (30, 0.95), (40, 0.9)]
    # final 0.9 -> target 0.81, first reached at step 20
    assert metrics.learning_efficiency([curve, []]) == [20, None]


def test_self_teaching_quality_is_a_ratio():
    assert metrics.self_teaching_quality([0.4, 0.3], [0.8, 0.0]) == [0.5, None]


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError):
        metrics.average_accuracy([[0.1, 0.2], [0.3, 0.4]])


def test_all_metrics_has_every_design_key():
    keys = set(metrics.all_metrics(R, [0.8, 0.7, 0.6, 0.8]))
    assert keys == {"average_accuracy", "learning_accuracy", "forgetting", "bwt", "fwt", "general_retention",
                    "worst_general_retention", "learning_efficiency", "self_teaching_quality"}
