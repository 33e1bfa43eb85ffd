"""Checkpoint rotation that a kill cannot turn into data loss.

mmengine's ``CheckpointHook`` removes the oldest kept checkpoint *before* it
writes the new one (and the previous best one before the new best). With
``max_keep_ckpts=1``, a process killed while ``epoch_2.pth`` is written
leaves no checkpoint at all, and a ``last_checkpoint`` naming the removed
``epoch_1.pth``.

:class:`AtomicCheckpointHook` (registered in mmengine's root ``HOOKS``;
``default_hooks.checkpoint.type`` of every config of the project) keeps
mmengine's options and file names and changes the order:

1. the new checkpoint is written to ``.<name>.tmp-<host>-<pid>``, flushed,
   fsynced and renamed into place (the ``local_atomic`` backend of
   :mod:`.atomic_backend`, used for local directories unless ``backend_args``
   names another backend);
2. then ``last_checkpoint`` is replaced the same way;
3. only then are the checkpoints beyond ``max_keep_ckpts`` (and a replaced
   best checkpoint) removed.

The checkpoint of step 1 lists the checkpoints still to be removed in its
``keep_ckpt_ids``, so a run resumed from it after a kill between steps 2 and
3 removes them (mmengine's ``before_train`` does). At the start of a run
(``before_run``, rank 0) temporary files of writers that are no longer
alive (same host, pid gone) are removed.

``--resume`` without a path (``resume=True``, no ``load_from``) is resolved
here too, before mmengine's ``load_or_resume``: the checkpoint
``last_checkpoint`` names if it is readable; otherwise, with a warning
saying why, the newest readable ``epoch_N.pth`` / ``iter_N.pth`` of the
checkpoint directory (:func:`find_resume_checkpoint`); with none at all, a
warning that says so plainly, and training starts from scratch.
"""
import logging
import os
import os.path as osp
import re
import socket
from collections import deque
from typing import Callable, List, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..checkpoint.reader import checkpoint_problem
from .atomic_backend import TMP_PATTERN, atomic_write

__all__ = ['AtomicCheckpointHook', 'find_resume_checkpoint', 'remove_stale_tmp_files',
           'pid_alive']


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host.

    Args:
        pid: Process id.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_tmp_files(directory: str) -> List[str]:
    """Remove the temporary files that :func:`.atomic_backend.atomic_write`
    writers of this host left in ``directory`` when they died.

    A file of a live process, or of another host (a shared file system),
    is left alone.

    Args:
        directory: Where to look (not recursive).

    Returns:
        The removed paths.
    """
    removed: List[str] = []
    if not osp.isdir(directory):
        return removed
    host = socket.gethostname()
    for name in sorted(os.listdir(directory)):
        match = TMP_PATTERN.match(name)
        if not match:
            continue
        if match['host'] not in (None, host) or pid_alive(int(match['pid'])):
            continue
        path = osp.join(directory, name)
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _step_pattern(filename_tmpl: str) -> 're.Pattern[str]':
    head, _, tail = filename_tmpl.partition('{}')
    return re.compile(f'^{re.escape(head)}(\\d+){re.escape(tail)}$')


def find_resume_checkpoint(work_dir: str, checkpoint_dir: Optional[str] = None,
                           filename_tmpls: Tuple[str, ...] = ('epoch_{}.pth', 'iter_{}.pth'),
                           problem: Callable[[str], Optional[str]] = checkpoint_problem
                           ) -> Tuple[Optional[str], List[str]]:
    """The checkpoint a bare ``--resume`` continues from.

    Args:
        work_dir: The run's work dir (holds ``last_checkpoint``).
        checkpoint_dir: Where the checkpoints are (default: ``work_dir``);
            the directory of the file ``last_checkpoint`` names is searched
            too.
        filename_tmpls: Names of regular checkpoints (``{}``: the step);
            best checkpoints hold no optimizer state and are not resumed from.
        problem: Why a file cannot be resumed from, or None if it can
            (default: :func:`.checkpoint.reader.checkpoint_problem`).

    Returns:
        ``(path or None, warnings)``: the checkpoint, and why
        ``last_checkpoint`` was not used (empty when it was).
    """
    notes: List[str] = []
    named: Optional[str] = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named is not None:
            reason = problem(named)
            if reason is None:
                return named, notes
            notes.append(f'{pointer} names {named}, which {reason}')
        else:
            notes.append(f'{pointer} is empty')
    dirs = [d for d in (checkpoint_dir or work_dir, work_dir,
                        osp.dirname(named) if named else None) if d]
    patterns = [_step_pattern(t) for t in filename_tmpls]
    candidates = {}
    for directory in dict.fromkeys(osp.abspath(d) for d in dirs):
        if not osp.isdir(directory):
            continue
        for name in os.listdir(directory):
            for pattern in patterns:
                match = pattern.match(name)
                if match:
                    path = osp.join(directory, name)
                    candidates[path] = (int(match[1]), osp.getmtime(path))
    skip = osp.abspath(named) if named else None
    for path in sorted(candidates, key=candidates.get, reverse=True):
        if path == skip:
            continue
        reason = problem(path)
        if reason is None:
            return path, notes
        notes.append(f'{path} {reason}')
    return None, notes


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` calls are recorded, not
    run (everything else passes through)."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.paths: List[str] = []

    def remove(self, path) -> None:
        self.paths.append(str(path))

    def rmtree(self, path) -> None:
        self.paths.append(str(path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that writes, then points, then removes
    (see the module docstring). Same arguments as ``CheckpointHook``.

    Args:
        *args: As ``CheckpointHook``.
        **kwargs: As ``CheckpointHook``. ``backend_args`` defaults to the
            ``local_atomic`` backend for a local ``out_dir``.
    """

    # -- start of a run ---------------------------------------------------
    def _checkpoint_dir(self, runner) -> str:
        out_dir = self.out_dir or runner.work_dir
        if out_dir != runner.work_dir:
            out_dir = osp.join(out_dir, osp.basename(runner.work_dir.rstrip(osp.sep)))
        return out_dir

    def _is_local(self, runner) -> bool:
        return '://' not in str(self.out_dir or runner.work_dir)

    def before_run(self, runner) -> None:
        """Remove dead writers' temporary files; resolve a bare resume."""
        if not self._is_local(runner):
            return
        directory = self._checkpoint_dir(runner)
        if is_main_process():
            for path in remove_stale_tmp_files(directory) + (
                    remove_stale_tmp_files(runner.work_dir)
                    if osp.abspath(directory) != osp.abspath(runner.work_dir) else []):
                print_log(f'AtomicCheckpointHook: removed {path}, the partial file of a '
                          'writer that was killed', logger='current', level=logging.WARNING)
        if getattr(runner, '_resume', False) and getattr(runner, '_load_from', None) is None:
            self._resolve_resume(runner, directory)

    def _resolve_resume(self, runner, directory: str) -> None:
        path, notes = find_resume_checkpoint(
            runner.work_dir, directory,
            tuple(dict.fromkeys([self.filename_tmpl, 'epoch_{}.pth', 'iter_{}.pth'])))
        if path is None:
            detail = f' ({"; ".join(notes)})' if notes else ''
            print_log(f'--resume: no checkpoint found in {runner.work_dir}{detail}: '
                      'training starts from scratch', logger='current',
                      level=logging.WARNING)
            runner._resume = False
            return
        if notes:
            print_log('--resume: ' + '; '.join(notes) + f'; resuming from {path}, the newest '
                      'readable checkpoint', logger='current', level=logging.WARNING)
        runner._load_from = path

    def before_train(self, runner) -> None:
        """As ``CheckpointHook``, with atomic writes for local directories."""
        if (self.backend_args is None and self.file_client_args is None
                and self._is_local(runner)):
            self.backend_args = dict(backend='local_atomic')
        super().before_train(runner)

    # -- saving -----------------------------------------------------------
    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        stale: List[int] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            kept = list(self.keep_ckpt_ids) + [step]
            stale = kept[:-self.max_keep_ckpts]
            self.keep_ckpt_ids = deque(kept[-self.max_keep_ckpts:], self.max_keep_ckpts)
            # the checkpoint lists the ones still to be removed: a run
            # resumed from it removes them if this one is killed first
            runner.message_hub.update_info('keep_ckpt_ids', kept)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if self.max_keep_ckpts > 0:
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        if not is_main_process():
            return
        atomic_write(str(self.last_ckpt).encode(), osp.join(runner.work_dir, 'last_checkpoint'))
        for old in stale:
            self._remove(self.file_backend.join_path(self.out_dir,
                                                     self.filename_tmpl.format(old)))

    def _remove(self, path: str) -> None:
        backend = self.file_backend
        if isinstance(backend, _DeferredRemovals):
            backend = backend._backend
        if backend.isfile(path):
            backend.remove(path)
        elif backend.isdir(path):  # deepspeed checkpoints are directories
            backend.rmtree(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """As ``CheckpointHook``, removing a replaced best checkpoint only
        after the new one (and the regular checkpoint that records it) is
        written."""
        backend = self.file_backend
        deferred = _DeferredRemovals(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        if not is_main_process():
            return
        current = {str(p) for p in [getattr(self, 'best_ckpt_path', None), self.last_ckpt,
                                    *getattr(self, 'best_ckpt_path_dict', {}).values()]
                   if p}
        for path in deferred.paths:
            if path not in current:
                self._remove(path)
