"""The scheduler's decisions without Ray: assignment, retries after a replica death, recovery, giving up."""

import pytest

from sam2_ray.dispatch import PROBE_INTERVAL_S, Dispatch
from sam2_ray.labeler import VideoOutcome
from sam2_ray.records import Prompt, VideoJob


def _jobs(*names: str) -> list[VideoJob]:
    return [VideoJob(name, f"/media/{name}.mp4", (Prompt(1, 0, box=(1, 1, 5, 5)),)) for name in names]


def _done(job: VideoJob) -> VideoOutcome:
    return VideoOutcome(job.video_id, "done", frames=3, rows=3)


def test_each_idle_replica_gets_the_next_video_in_order_and_is_freed_by_its_answer():
    jobs = _jobs("a", "b", "c")
    dispatch = Dispatch(jobs, num_replicas=2)
    pairs = dispatch.assign()
    assert sorted(job.video_id for _, job in pairs) == ["a", "b"] and {r for r, _ in pairs} == {0, 1}
    assert dispatch.assign() == []  # one video in flight per replica
    replica_of = {job.video_id: r for r, job in pairs}
    dispatch.finished(replica_of["b"], _done(jobs[1]))
    [(replica, job)] = dispatch.assign()
    assert (replica, job.video_id) == (replica_of["b"], "c")
    assert [dispatch.state(v) for v in "abc"] == ["running", "done", "running"]


def test_a_video_whose_replica_died_runs_again_first_then_fails_when_its_attempts_are_used():
    dispatch = Dispatch(_jobs("a", "b"), num_replicas=1, max_attempts=2)
    [(replica, job)] = dispatch.assign()
    assert job.video_id == "a"
    assert dispatch.lost(replica, "killed", now=0.0) is None
    assert dispatch.state("a") == "pending" and dispatch.videos["a"].retried == 1
    assert dispatch.assign() == []  # the replica is gone until it answers a probe
    assert dispatch.probes_due(now=0.0) == [replica] and dispatch.probes_due(now=0.0) == []
    dispatch.recovered(replica)
    [(replica, job)] = dispatch.assign()
    assert job.video_id == "a"  # the retried video goes before the ones never started
    failed = dispatch.lost(replica, "killed again", now=1.0)
    assert failed.status == "failed" and "replica died 2 times: killed again" in failed.reason
    assert dispatch.state("a") == "failed" and dispatch.active  # b is still pending
    dispatch.recovered(replica)
    [(_, job)] = dispatch.assign()
    dispatch.finished(replica, _done(job))
    assert not dispatch.active and [o.status for o in dispatch.outcomes] == ["failed", "done"]


def test_a_failed_video_frees_its_replica_and_counts_as_failed():
    dispatch = Dispatch(_jobs("a"), num_replicas=1)
    [(replica, job)] = dispatch.assign()
    dispatch.finished(replica, VideoOutcome("a", "failed", reason="unreadable"))
    assert dispatch.state("a") == "failed" and not dispatch.active and dispatch._idle == [replica]


def test_a_dead_replica_is_probed_until_it_answers_or_recovery_time_has_passed():
    dispatch = Dispatch(_jobs("a"), num_replicas=1, recovery_s=10.0)
    [(replica, _)] = dispatch.assign()
    dispatch.lost(replica, "node lost", now=100.0)
    assert dispatch.probes_due(now=100.0) == [replica]
    dispatch.probe_failed(replica, now=101.0)
    assert dispatch.probes_due(now=101.0) == []
    assert dispatch.probes_due(now=101.0 + PROBE_INTERVAL_S) == [replica]
    assert dispatch.give_up(now=105.0) == []  # not gone for long enough yet
    dispatch.probe_failed(replica, now=111.0)  # gone for 11 s: no more probes
    assert dispatch.probes_due(now=1000.0) == []
    [failed] = dispatch.give_up(now=111.0)
    assert (failed.video_id, failed.reason) == ("a", "no replica recovered")
    assert not dispatch.active and dispatch.state("a") == "failed"


def test_one_live_replica_is_enough_to_keep_going():
    dispatch = Dispatch(_jobs("a", "b"), num_replicas=2, recovery_s=1.0)
    pairs = dict(dispatch.assign())
    dead, alive = sorted(pairs)
    dispatch.lost(dead, "killed", now=0.0)
    dispatch.probe_failed(dead, now=5.0)
    assert dispatch.give_up(now=5.0) == []  # the live replica is still running b
    dispatch.finished(alive, _done(pairs[alive]))
    [(replica, job)] = dispatch.assign()
    assert replica == alive and job.video_id == pairs[dead].video_id
    dispatch.finished(alive, _done(job))
    assert not dispatch.active and {o.status for o in dispatch.outcomes} == {"done"}


@pytest.mark.parametrize("max_attempts", [1, 3])
def test_attempts_count_every_start(max_attempts):
    dispatch = Dispatch(_jobs("a"), num_replicas=1, max_attempts=max_attempts)
    for attempt in range(1, max_attempts + 1):
        [(replica, _)] = dispatch.assign()
        assert dispatch.videos["a"].attempts == attempt
        outcome = dispatch.lost(replica, "killed", now=float(attempt))
        dispatch.recovered(replica)
    assert outcome is not None and dispatch.state("a") == "failed" and not dispatch.active
