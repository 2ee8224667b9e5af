"""The scaling benchmark's verdict: 2 + 2 must beat 1 + 1 by the target on each write path measured, and no window
may have lost, doubled, oversold or left anything queued, however fast it was."""

from __future__ import annotations

from typing import Any

from loadtests.bench_scale import verdict

TARGET = 1.3


def window(per_s: float, **faults: int | bool) -> dict[str, Any]:
    return {"per_s": per_s, "machine_idle_cores": 0.4, "lost": 0, "duplicates": 0, "oversold": 0, "undrained": 0,
            **faults}


def four(signups: tuple[float, float], apply: tuple[float, float], **faults: int | bool) -> dict[str, dict[str, Any]]:
    return {
        "signups_1x1": window(signups[0]), "signups_2x2": window(signups[1], **faults),
        "apply_1x1": window(apply[0]), "apply_2x2": window(apply[1]),
    }


def test_both_paths_scaling_by_the_target_pass_and_the_headline_keys_are_there() -> None:
    result = verdict(four((2000, 2800), (1000, 1500)), ["signups", "apply"], TARGET)

    assert result == {
        "signups_1x1": 2000, "signups_2x2": 2800, "signups_ratio": 1.4, "signups_idle_cores_1x1": 0.4,
        "apply_1x1": 1000, "apply_2x2": 1500, "apply_ratio": 1.5, "apply_idle_cores_1x1": 0.4,
        "target_ratio": 1.3, "targets_met": True,
    }


def test_one_path_short_of_the_target_fails_the_run() -> None:
    assert verdict(four((2000, 2500), (1000, 1500)), ["signups", "apply"], TARGET)["targets_met"] is False
    assert verdict(four((2000, 2800), (1000, 1250)), ["signups", "apply"], TARGET)["targets_met"] is False
    assert verdict(four((2000, 2600), (1000, 1300)), ["signups", "apply"], TARGET)["targets_met"] is True  # ≥


def test_a_window_that_lost_doubled_or_left_work_queued_fails_however_fast() -> None:
    for fault in ("lost", "duplicates", "oversold", "undrained"):
        result = verdict(four((2000, 4000), (1000, 2000), **{fault: 1}), ["signups", "apply"], TARGET)
        assert result["signups_ratio"] == 2.0 and result["targets_met"] is False, fault


def test_an_apply_window_that_ran_out_of_pairs_is_no_measurement() -> None:
    windows = {"apply_1x1": window(1000), "apply_2x2": window(2000, pairs_exhausted=True)}
    assert verdict(windows, ["apply"], TARGET)["targets_met"] is False


def test_a_path_measured_alone_is_judged_alone_and_a_missing_window_is_no_pass() -> None:
    windows = {"apply_1x1": window(1000), "apply_2x2": window(1400)}
    alone = verdict(windows, ["apply"], TARGET)
    assert alone["targets_met"] is True and alone["signups_ratio"] is None and alone["signups_1x1"] is None

    assert verdict({"apply_1x1": window(1000)}, ["apply"], TARGET)["targets_met"] is False
    assert verdict({"apply_1x1": window(0), "apply_2x2": window(10)}, ["apply"], TARGET)["targets_met"] is False
    assert verdict({}, [], TARGET)["targets_met"] is False
