"""--distribute: the strategy, which process of a cluster this is, each replica's data, and losing a worker.

On one machine, --distribute mirrors the step over its GPUs (or its CPU devices).
With TF_CONFIG naming a cluster, every machine runs the same command: a
MultiWorkerMirroredStrategy sums the gradients over all workers' replicas.
The chief (the "chief" task, else worker 0) alone writes the run folder; the
other workers train identical copies and write only into a temporary folder of
their own, which they remove. The global batch is --batch-size, split over all
replicas; each replica draws its rows of it (see `replica_batches`), so a run
trains the same weights whatever the number of workers, to float rounding.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from cgan.errors import TrainingStopped, UserError


def _seconds(name: str, default: float) -> float:
    """A number of seconds from the environment variable `name` (at least 1), else `default`."""
    try:
        return max(float(os.environ.get(name, default)), 1.0)
    except ValueError:
        return default


# How long a worker waits for every worker of TF_CONFIG to start; TensorFlow would wait for ever, deaf to
# SIGTERM. CGAN_JOIN_TIMEOUT_S sets another (the tests use a few seconds). A worker killed mid-run is
# found by TensorFlow's coordination service, whose heartbeats time out after 10 s: the others then stop
# instead of waiting in their next step.
JOIN_TIMEOUT_S = _seconds("CGAN_JOIN_TIMEOUT_S", 300)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The cluster TF_CONFIG describes, and which of its tasks this process is."""

    tasks: dict  # {"chief": ["host:port"], "worker": [...]}
    task_type: str
    task_index: int

    @property
    def chief(self) -> tuple[str, int]:
        """(type, index) of the task that writes the run folder: the "chief", else worker 0."""
        return ("chief", 0) if self.tasks.get("chief") else ("worker", 0)

    @property
    def is_chief(self) -> bool:
        return (self.task_type, self.task_index) == self.chief

    @property
    def size(self) -> int:
        return sum(len(hosts) for hosts in self.tasks.values())

    def name(self, task_type: str | None = None, index: int | None = None) -> str:
        """How a task reads in a message: "worker 1 (10.0.0.2:2222)"; this process's by default."""
        task_type = self.task_type if task_type is None else task_type
        index = self.task_index if index is None else index
        hosts = self.tasks.get(task_type, [])
        where = f" ({hosts[index]})" if index < len(hosts) else ""
        return f"{task_type} {index}{where}" if task_type != "chief" else f"the chief{where}"


def cluster(environ=None) -> Cluster | None:
    """The cluster of TF_CONFIG, None without one; UserError for a TF_CONFIG that cannot describe one."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        spec = json.loads(text)
        tasks = {kind: list(hosts) for kind, hosts in spec["cluster"].items()}
        task_type, task_index = str(spec["task"]["type"]), int(spec["task"]["index"])
    except (ValueError, TypeError, KeyError, AttributeError):
        raise UserError('TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
                        '"task": {"type": "worker", "index": 0}}') from None
    if not all(isinstance(h, str) and h for hosts in tasks.values() for h in hosts) or task_type not in tasks:
        raise UserError(f"TF_CONFIG: task type {task_type!r} is not one of the cluster's {sorted(tasks)}")
    if not 0 <= task_index < len(tasks[task_type]):
        raise UserError(f"TF_CONFIG: task index {task_index} is not one of the {len(tasks[task_type])} "
                        f"{task_type} address(es)")
    unknown = set(tasks) - {"chief", "worker"}
    if unknown:
        raise UserError(f"TF_CONFIG: only chief and worker tasks train here, not {sorted(unknown)}")
    return Cluster(tasks, task_type, task_index)


def strategy(verbose: bool = True):
    """The strategy of --distribute: across the workers of TF_CONFIG, else across this machine's devices.

    On one machine, a MirroredStrategy over the visible GPUs, or over the CPU devices where
    there is none. With TF_CONFIG, a MultiWorkerMirroredStrategy that waits at most
    JOIN_TIMEOUT_S for the other workers to start.
    """
    from cgan.backend import tf

    found = cluster()
    if found is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        made = tf.distribute.MirroredStrategy(devices)
        where = ", ".join(devices)
    else:
        if verbose:
            print(f"{found.name()}: waiting for the {found.size} workers of TF_CONFIG (at most {JOIN_TIMEOUT_S:g} s)",
                  flush=True)
        made = _within(JOIN_TIMEOUT_S, tf.distribute.MultiWorkerMirroredStrategy,
                       f"not every worker of TF_CONFIG started within {JOIN_TIMEOUT_S:g} s: start the same command "
                       f"on each, with its own TF_CONFIG task")
        where = f"the {found.size} workers of TF_CONFIG, this one {found.name()}"
    if verbose:
        print(f"distributed over {made.num_replicas_in_sync} replica(s): {where}", flush=True)
    return made


# Run beside a process that waits in C++: on no word (EOF) from it in time, say why and kill it.
_WATCHDOG = """
import os, select, signal, sys
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], seconds)[0]:
    sys.stderr.write(message + "\\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)
"""


def _within(seconds: float, make, message: str):
    """`make()`, or this process is killed after `seconds` with `message` on stderr (one line).

    For the strategy's start, which waits in TensorFlow's C++ for the other workers
    holding the interpreter's lock, with SIGTERM caught by TensorFlow: no exception,
    thread or signal handler of this process can end that wait, so a watchdog process
    does. Nothing of the run is written before it.
    """
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds),
                                 f"{Path(sys.argv[0]).name}: {message}"], stdin=subprocess.PIPE)
    try:
        return make()
    finally:
        watchdog.stdin.close()
        watchdog.wait()


def is_multi_worker(strategy) -> bool:
    """Whether `strategy` spans the workers of a cluster (its collectives can lose a worker)."""
    from cgan.backend import tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def replica_batches(strategy, make_batches, *, batch_size: int, chunks: int):
    """The run's batches, each replica drawing its rows of every global batch, as a distributed dataset.

    `make_batches()` gives the global batches (one per step: `chunks` real batches of
    `batch_size`, one after the other). Replica r of R takes rows r/R to (r+1)/R of each
    chunk: the rows one device would give it by splitting each chunk, so a critic's k
    updates a step see the same images on any number of replicas. Each worker builds only
    its own replicas' pipeline. `batch_size` must split evenly (`check_batch`).
    """
    from cgan.backend import tf

    replicas = strategy.num_replicas_in_sync
    rows = replica_rows(replicas, batch_size, chunks)

    def for_pipeline(context):
        per_pipeline = replicas // context.num_input_pipelines
        mine = rows[context.input_pipeline_id * per_pipeline :][:per_pipeline]

        def split(*batch):  # this pipeline's replicas' batches, in replica order
            return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda t: tf.gather(t, mine), batch))

        return make_batches().flat_map(split)

    return strategy.distribute_datasets_from_function(for_pipeline)


def replica_rows(replicas: int, batch_size: int, chunks: int) -> np.ndarray:
    """(replicas, rows): replica r's rows of a global batch of `chunks` x `batch_size`, chunk after chunk."""
    rows = np.arange(chunks * batch_size).reshape(chunks, replicas, batch_size // replicas)
    return rows.transpose(1, 0, 2).reshape(replicas, -1)


def check_batch(strategy, batch_size: int, group_size: int = 0) -> None:
    """UserError unless the global batch splits evenly over the replicas, and each replica's into `group_size`s."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise UserError(f"--batch-size {batch_size} does not split over {replicas} replicas: give a multiple of "
                        f"{replicas}")
    if group_size and (batch_size // replicas) % group_size:
        raise UserError(f"--minibatch-std {group_size} does not divide each of {replicas} replicas' "
                        f"{batch_size // replicas} images: give a --batch-size of a multiple of "
                        f"{replicas * group_size}")


_PEER = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


def lost_worker(exc: Exception, step: int, run_dir, checkpoints: list | None) -> TrainingStopped:
    """The one-line stop of a run whose collective failed because a worker is gone.

    `checkpoints` are the run folder's (None where this process cannot tell: a worker
    other than the chief).
    """
    from cgan.checkpoints import step_of

    found = cluster()
    peer = _PEER.search(str(exc))
    who = found.name(peer[1], int(peer[2])) if found is not None and peer else "a worker"
    kept = ""
    if checkpoints is not None:
        kept = (f"; the last checkpoint is step {step_of(checkpoints[-1])}" if checkpoints
                else "; no checkpoint was written")
    return TrainingStopped(f"lost {who} at step {step}: training stopped ({type(exc).__name__}){kept}; start every "
                           f"worker again with --resume {run_dir}", 1)
