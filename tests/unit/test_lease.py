"""Leader election without a cluster: the Lease timings, the holder identity, the CLI flags.
(The election itself runs against the real control plane in tests/integration/test_leader.py.)"""

from __future__ import annotations

import pytest

from gitops_lab.agent.leader import LeaseConfig, default_identity
from gitops_lab.cli import build_parser


def test_lease_timings_default_to_client_gos_15_10_2() -> None:
    cfg = LeaseConfig().resolved()
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (15.0, 10.0, 2.0)
    assert (cfg.name, cfg.namespace) == ("gitops-lab-agent", "gitops-lab")
    assert cfg.identity  # hostname_pid or $POD_NAME


def test_a_short_lease_scales_the_deadline_and_the_retry_period() -> None:
    cfg = LeaseConfig(lease_duration=3).resolved()
    assert cfg.renew_deadline == pytest.approx(2.0)
    assert cfg.retry_period == pytest.approx(0.6)


def test_timings_that_could_let_two_leaders_overlap_are_refused() -> None:
    with pytest.raises(ValueError, match=r"renew deadline \(20 s\) < lease duration \(15 s\)"):
        LeaseConfig(renew_deadline=20).resolved()
    with pytest.raises(ValueError, match=r"retry period \(5 s\) < renew deadline \(4 s\)"):
        LeaseConfig(renew_deadline=4, retry_period=5).resolved()


def test_identity_is_the_pod_name_in_a_pod_and_unique_per_elector(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "gitops-lab-agent-7d9f-abcde")
    first, second = default_identity(), default_identity()
    assert first.startswith("gitops-lab-agent-7d9f-abcde")
    assert first != second  # two agents in one process must never share an identity
    monkeypatch.delenv("POD_NAME")
    assert "_" in default_identity()  # hostname_pid


def test_agent_run_flags() -> None:
    parser = build_parser()
    args = parser.parse_args(["agent", "run"])
    assert (args.leader_elect, args.lease_name, args.lease_duration) == \
        (True, "gitops-lab-agent", 15.0)
    args = parser.parse_args(["agent", "run", "--no-leader-elect", "--lease-name", "other",
                              "--lease-duration", "5"])
    assert (args.leader_elect, args.lease_name, args.lease_duration) == (False, "other", 5.0)
