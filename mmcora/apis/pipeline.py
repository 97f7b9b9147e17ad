"""A resumable pipeline of commands: steps with dependencies, run in parallel where they can.

Each :class:`Step` is one command (a subprocess, so that it has its own torch threads and its
own log). :func:`run_steps` starts every step whose dependencies are done, at most ``jobs`` at
a time, streams the lines of each step's output that show progress to the console with the
step's name in front, keeps the whole output in ``<work_dir>/logs/<step>.log``, and writes
``<work_dir>/steps/<step>.json`` when a step ends with status 0. A rerun skips the steps with
a marker; a step that was cut off is started again with the same command, so commands must
resume by themselves (``tools/train.py --resume``, the exporter's skip of finished images).
Delete a marker to redo its step.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Pattern, Sequence

#: Lines shown on the console (all lines go to the step's log): training and evaluation
#: progress of mmengine's logger, the foundation pretraining's progress, the steps' own
#: summaries, warnings and errors.
PROGRESS = re.compile(
    r'Iter\((train|val|test)\)|pretraining .*\[\d+/\d+\]|stage \d+/\d+ "|exported|Saving checkpoint'
    r'|^\[pipeline\]|WARNING|Error|error:|Traceback')


class StepFailed(RuntimeError):
    """A step's command ended with a non-zero status (its log's path is in the message)."""


@dataclass
class Step:
    """One command of a pipeline.

    Args:
        name (str): Unique name (the marker's and the log's file name).
        command (Sequence[str]): The argument list, run from the current directory.
        needs (Sequence[str]): Names of the steps that must be done first.
        describe (str): One line shown when the step starts.
        outputs (Callable, optional): Called after the command succeeded; returns what the marker
            records (paths the later steps read). Raising fails the step.
        env (dict[str, str]): Extra environment variables of the command.
    """
    name: str
    command: Sequence[str]
    needs: Sequence[str] = ()
    describe: str = ''
    outputs: Optional[Callable[[], Dict]] = None
    env: Dict[str, str] = field(default_factory=dict)


def marker_path(work_dir: str, name: str) -> str:
    return osp.join(work_dir, 'steps', f'{name}.json')


def read_marker(work_dir: str, name: str) -> Optional[Dict]:
    """The marker of a finished step, or None."""
    path = marker_path(work_dir, name)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _check_graph(steps: Sequence[Step]) -> None:
    names = [s.name for s in steps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'duplicate step names: {duplicates}')
    order = {n: i for i, n in enumerate(names)}
    for step in steps:
        for need in step.needs:
            if need not in order:
                raise ValueError(f'step {step.name!r} needs {need!r}, which is no step')
            if order[need] >= order[step.name]:
                raise ValueError(f'step {step.name!r} needs {need!r}, listed after it')


def _say(text: str) -> None:
    print(f'[pipeline] {text}', flush=True)


class _Running:
    """A started step: its process, the thread copying its output, its start time."""

    def __init__(self, step: Step, work_dir: str, show: Pattern) -> None:
        self.step, self.start = step, time.perf_counter()
        self.log_path = osp.join(work_dir, 'logs', f'{step.name}.log')
        self.log = open(self.log_path, 'a')
        self.log.write(f'\n==== {time.strftime("%Y-%m-%d %H:%M:%S")} '
                       f'{" ".join(step.command)}\n')
        self.log.flush()
        env = {**os.environ, 'PYTHONUNBUFFERED': '1', **step.env}
        self.process = subprocess.Popen(
            list(step.command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            bufsize=1)
        self.thread = threading.Thread(target=self._copy, args=(show, ), daemon=True)
        self.thread.start()

    def _copy(self, show: Pattern) -> None:
        for line in self.process.stdout:
            self.log.write(line)
            # mmengine writes progress with '\r' rewrites in some places: keep the last part
            text = line.rstrip('\n').split('\r')[-1]
            if show.search(text):
                print(f'[{self.step.name}] {text.strip()}', flush=True)
        self.log.flush()

    def finish(self) -> int:
        code = self.process.wait()
        self.thread.join()
        self.log.close()
        return code

    def tail(self, lines: int = 30) -> str:
        with open(self.log_path) as f:
            return ''.join(f.readlines()[-lines:])

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def run_steps(steps: Sequence[Step],
              work_dir: str,
              jobs: int = 2,
              show: Pattern = PROGRESS) -> Dict[str, Dict]:
    """Run the steps that have no marker, in parallel where their dependencies allow.

    Steps are started in their listed order among those that are ready. When one fails, the
    running ones are stopped (their outputs stay for the rerun) and :class:`StepFailed`
    names the step and its log, after the log's last lines were printed.

    Returns:
        The markers of all steps (name -> dict with ``seconds``, ``skipped`` and the
        step's ``outputs``).
    """
    _check_graph(steps)
    if jobs < 1:
        raise ValueError(f'jobs must be at least 1, got {jobs}')
    for sub in ('steps', 'logs'):
        os.makedirs(osp.join(work_dir, sub), exist_ok=True)
    markers: Dict[str, Dict] = {}
    pending: List[Step] = []
    for step in steps:
        marker = read_marker(work_dir, step.name)
        if marker is None:
            pending.append(step)
        else:
            markers[step.name] = {**marker, 'skipped': True}
            _say(f'{step.name}: done on {marker["finished"]}, skipped '
                 f'(delete {marker_path(work_dir, step.name)} to redo it)')
    running: Dict[str, _Running] = {}
    try:
        while pending or running:
            ready = [s for s in pending if all(n in markers for n in s.needs)]
            while ready and len(running) < jobs:
                step = ready.pop(0)
                pending.remove(step)
                _say(f'{step.name}: starts{" - " + step.describe if step.describe else ""} '
                     f'(log: {osp.join(work_dir, "logs", step.name + ".log")})')
                running[step.name] = _Running(step, work_dir, show)
            if not running:
                raise RuntimeError(f'steps {[s.name for s in pending]} can never start')
            finished = _wait_any(running)
            item = running.pop(finished)
            code = item.finish()
            seconds = time.perf_counter() - item.start
            if code != 0:
                sys.stdout.write(item.tail())
                raise StepFailed(f'step {finished!r} failed (status {code}) after '
                                 f'{seconds:.0f} s; its log: {item.log_path}. Run the same '
                                 'command again to continue from where it stopped.')
            outputs = item.step.outputs() if item.step.outputs else {}
            marker = dict(
                step=finished,
                command=list(item.step.command),
                seconds=round(seconds, 1),
                outputs=outputs,
                finished=time.strftime('%Y-%m-%d %H:%M:%S'))
            path = marker_path(work_dir, finished)
            with open(path + '.tmp', 'w') as f:
                json.dump(marker, f, indent=1)
            os.replace(path + '.tmp', path)
            markers[finished] = {**marker, 'skipped': False}
            _say(f'{finished}: done in {_minutes(seconds)}')
    finally:
        for item in running.values():
            item.terminate()
    return markers


def _wait_any(running: Dict[str, _Running]) -> str:
    while True:
        for name, item in running.items():
            if item.process.poll() is not None:
                return name
        time.sleep(0.2)


def _minutes(seconds: float) -> str:
    return f'{int(seconds // 60)} min {seconds % 60:04.1f} s'


def timing_table(markers: Dict[str, Dict], steps: Sequence[Step]) -> str:
    """Markdown table of the steps' wall times (skipped steps show their first run's)."""
    rows = ['| step | wall time | this run |', '|---|---|---|']
    for step in steps:
        marker = markers.get(step.name)
        if marker is not None:
            rows.append(f'| {step.name} | {_minutes(marker["seconds"])} | '
                        f'{"skipped (done before)" if marker["skipped"] else "ran"} |')
    return '\n'.join(rows)
