"""Checkpoints written atomically: a kill never leaves a partial file under
the final name.

mmengine's ``LocalBackend.put`` opens ``epoch_N.pth`` and writes into it; a
process killed meanwhile leaves a truncated ``epoch_N.pth`` (and a
``last_checkpoint`` that may name it). :class:`AtomicLocalBackend`, registered
with mmengine's file backends as ``local_atomic``, writes to a temporary file
in the same directory, flushes it to disk, then renames it over the final
name (``os.replace``, atomic on POSIX and Windows). A reader sees the old
file or the whole new one; a failed or killed write leaves at most a
``.<name>.tmp-<host>-<pid>`` file (:data:`TMP_PATTERN`), never a partial
``epoch_N.pth``; the next run removes it
(:func:`.checkpoint_hook.remove_stale_tmp_files`).

The project's checkpoint hook, :class:`.checkpoint_hook.AtomicCheckpointHook`,
writes checkpoints through it (and ``last_checkpoint`` through
:func:`atomic_write`) in local directories; any other ``CheckpointHook``
can use it with ``backend_args=dict(backend='local_atomic')``. Reading is
``LocalBackend``'s.
"""
import os
import os.path as osp
import re
import socket
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

__all__ = ['AtomicLocalBackend', 'atomic_write', 'TMP_PATTERN', 'tmp_name']

#: Names of the temporary files: ``.<name>.tmp-<host>-<pid>`` (``<host>-``
#: absent in files of earlier versions).
TMP_PATTERN = re.compile(r'^\.(?P<name>.+)\.tmp-(?:(?P<host>.+)-)?(?P<pid>\d+)$')


def tmp_name(filepath: Union[str, Path]) -> str:
    """The temporary file this process writes ``filepath`` through.

    Args:
        filepath: The final path.
    """
    directory, name = osp.split(osp.abspath(str(filepath)))
    return osp.join(directory, f'.{name}.tmp-{socket.gethostname()}-{os.getpid()}')


def atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` through a temporary file and a rename.

    Args:
        data: The bytes to write.
        filepath: The final path; its directory is created if missing.
    """
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    tmp = tmp_name(filepath)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@register_backend('local_atomic', force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put``/``put_text`` write atomically."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically.

        Args:
            obj: Data to write.
            filepath: Destination path.
        """
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically.

        Args:
            obj: Text to write.
            filepath: Destination path.
            encoding: Text encoding.
        """
        atomic_write(obj.encode(encoding), filepath)
