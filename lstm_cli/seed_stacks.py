"""Seed stacks as a sweep's units of work (``stacked.py`` trains them).

``stacks`` joins the jobs of the runs that differ only in their seed into stack
jobs (``pool.Job`` with its runs in ``members``), as many as fit in memory
together, split while there are fewer units than workers. An executor runs a
stack job like any other, with ``sweep.train_job``, which hands it to
``train_stack``: every run's record is written by ``runs.run_training`` as
alone, fed that run's events from the stack. The job's outcome (a
``StackRecord``) is turned back into one outcome per run (``by_run``) and the
sweep's callbacks are called once per run (``each_run``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lstm_cli.pool import Job


class StackRecord(dict):
    """What a stack job returns: the result.json of its first run (the job's own key), and in
    ``members`` {index: (record or None, error or None)} for every run of the stack."""

    members: dict


def stacks(jobs: list[Job], workers: int) -> list[Job]:
    """The jobs with those that differ only in their seed (``stacked.group_key``) joined into stack
    jobs, each the unit of work of one worker, as many runs as fit in memory together
    (``stacked.most_stacked``). A stack of one is its plain job. When there are
    fewer units than workers, the largest stacks are split in two until every worker has one
    (or no stack is left to split): stacking shares the per-step work of a run, two workers
    the runs themselves, and on two free cores both together are fastest."""
    from lstm_cli import stacked
    from lstm_cli.train import TrainConfig

    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        config = TrainConfig.from_dict(job.config)
        key = stacked.group_key(config) if stacked.stackable(config) else ("alone", job.index)
        groups.setdefault(key, []).append(job)
    units = []
    for members in groups.values():
        most = stacked.most_stacked(TrainConfig.from_dict(members[0].config)) or len(members)
        units += [members[start:start + most] for start in range(0, len(members), most)]
    while len(units) < workers and max(map(len, units), default=0) >= 2:
        largest = max(units, key=len)
        units.remove(largest)
        half = (len(largest) + 1) // 2
        units += [largest[:half], largest[half:]]
    return [members[0] if len(members) == 1 else dataclasses.replace(members[0], members=tuple(members))
            for members in units]


def members_of(job: Job) -> list[Job]:
    """The runs' jobs of a stack job; [job] for a plain one."""
    return list(job.members) or [job]


def train_stack(job: Job) -> StackRecord:
    """Train a stack job's runs together (``stacked.train_stacked``), each into its own record.

    Each run's record is written by ``runs.run_training``, as alone, in a thread of its own that
    takes that run's events from the stack: every run holds its lock, keeps a record finished by
    another process (and then leaves the stack) and fails alone. An error of the stack itself fails
    the runs still training (their records say why) and leaves the finished ones as they are. Ctrl-C
    (or the worker's SIGTERM) records every run still training as interrupted and is raised again."""
    import queue
    import threading

    from lstm_cli import rundir, runs, stacked
    from lstm_cli.train import Diverged, Finished, TrainConfig

    members = members_of(job)
    configs = [TrainConfig.from_dict(member.config) for member in members]
    feeds = [queue.SimpleQueue() for _ in members]
    closed = [False] * len(members)
    outcomes: dict[int, tuple] = {}

    def events(feed):
        while True:
            event = feed.get()
            if isinstance(event, BaseException):
                raise event
            yield event
            if isinstance(event, (Finished, Diverged)):
                return

    def write(k: int) -> None:
        member = members[k]
        try:
            outcomes[member.index] = (runs.run_training(configs[k], Path(member.sweep_dir), name=member.key,
                                                        existing="resume", wait=True, events=events(feeds[k])),
                                      None)
        except BaseException as err:  # noqa: BLE001 - this run's failure, reported for it alone
            message = " ".join(str(err).split()) or type(err).__name__
            outcomes[member.index] = (None, f"{type(err).__name__}: {message}")
        finally:
            closed[k] = True

    writers = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(len(members))]
    for writer in writers:
        writer.start()
    try:
        for k, event in stacked.train_stacked(configs, dropped=lambda k: closed[k]):
            feeds[k].put(event)
    except KeyboardInterrupt:
        for feed in feeds:
            feed.put(KeyboardInterrupt())
        _join(writers, feeds)
        raise
    except Exception as err:  # noqa: BLE001 - the runs still training fail with it; finished ones stay
        for feed in feeds:
            feed.put(RuntimeError(f"the seed stack failed: {type(err).__name__}: {' '.join(str(err).split())}"))
    _join(writers, feeds)
    # the job's own record is its first run's result.json, as an executor that checks the arrival
    # of a job's record (pool_dask) reads it back, even when that run failed
    first = outcomes[members[0].index][0]
    if first is None:
        first = rundir.read_result(Path(members[0].sweep_dir) / members[0].key)
    record = StackRecord(first or {})
    record.members = outcomes
    return record


def _join(writers: list, feeds: list) -> None:
    """Wait for every record writer of a stack. Ctrl-C meanwhile reaches the writers still waiting
    for events (their runs are recorded as interrupted); the others finish writing, and then it
    is raised again: a record is never left half done."""
    interrupted = False
    for writer in writers:
        while writer.is_alive():
            try:
                writer.join()
            except KeyboardInterrupt:
                interrupted = True
                for feed in feeds:
                    feed.put(KeyboardInterrupt())
    if interrupted:
        raise KeyboardInterrupt


def outcomes_of(job: Job, record, error) -> dict[int, tuple]:
    """{index: (record, error)} of every run of ``job``, from the job's outcome."""
    members = members_of(job)
    if not job.members:
        return {job.index: (record, error)}
    if error is not None or not isinstance(record, StackRecord):  # the whole stack failed
        return {m.index: (None, error or "the seed stack returned no records") for m in members}
    return {m.index: record.members.get(m.index, (None, "no record")) for m in members}


def each_run(callback):
    """A job callback (on_start(job) or on_done(job, record, error)) called once per run of a stack."""
    if callback is None:
        return None

    def each(job: Job, *outcome) -> None:
        if not outcome:
            for member in members_of(job):
                callback(member)
            return
        runs_of = outcomes_of(job, *outcome)
        for member in members_of(job):
            callback(member, *runs_of[member.index])

    return each


def by_run(units: list[Job], done: dict[int, tuple]) -> dict[int, tuple]:
    by_run: dict[int, tuple] = {}
    for job in units:
        if job.index in done:
            by_run.update(outcomes_of(job, *done[job.index]))
    return by_run
