"""cgan.distribute's reading of TF_CONFIG and its messages, without starting a cluster (tests/test_workers.py does)."""

from __future__ import annotations

import json

import pytest

from cgan import distribute
from cgan.errors import UserError


def config(cluster: dict, task_type: str = "worker", index: int = 0) -> dict:
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


def test_no_tf_config_is_no_cluster():
    assert distribute.cluster({}) is None and distribute.cluster({"TF_CONFIG": "  "}) is None


def test_worker_zero_is_the_chief_unless_there_is_a_chief_task():
    workers = {"worker": ["a:1", "b:2"]}
    assert distribute.cluster(config(workers, index=0)).is_chief
    second = distribute.cluster(config(workers, index=1))
    assert not second.is_chief and second.size == 2 and second.name() == "worker 1 (b:2)"
    with_chief = {"chief": ["c:3"], "worker": ["a:1", "b:2"]}
    assert not distribute.cluster(config(with_chief, index=0)).is_chief
    chief = distribute.cluster(config(with_chief, "chief", 0))
    assert chief.is_chief and chief.size == 3 and chief.name() == "the chief (c:3)"


def test_a_lost_worker_is_named_from_the_error_and_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", config({"worker": ["a:1", "b:2"]})["TF_CONFIG"])
    error = RuntimeError("cluster check alive failed, /job:worker/replica:0/task:1 is down")
    stop = distribute.lost_worker(error, 37, "runs/x", [])
    assert str(stop).startswith("lost worker 1 (b:2) at step 37") and "--resume runs/x" in str(stop)
    assert stop.exit_code == 1 and "\n" not in str(stop)
    assert "a worker at step" in str(distribute.lost_worker(RuntimeError("?"), 3, "runs/x", None))


class FakeStrategy:
    num_replicas_in_sync = 4


def test_each_replica_takes_its_share_of_every_chunk():
    """What `replica_batches` hands replica r: its quarter of each of the step's two chunks, chunk after chunk."""
    rows = distribute.replica_rows(4, 8, 2)
    assert rows.tolist() == [[0, 1, 8, 9], [2, 3, 10, 11], [4, 5, 12, 13], [6, 7, 14, 15]]
    assert distribute.replica_rows(1, 8, 3).tolist() == [list(range(24))]  # one replica: the batch as it is
    with pytest.raises(UserError, match="--batch-size 6 does not split over 4 replicas"):
        distribute.check_batch(FakeStrategy(), 6)
    with pytest.raises(UserError, match="--minibatch-std 4 does not divide each of 4 replicas' 2 images"):
        distribute.check_batch(FakeStrategy(), 8, 4)  # the groups of D's minibatch spread are per replica
    distribute.check_batch(FakeStrategy(), 32, 4)
