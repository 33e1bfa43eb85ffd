"""Checkpoints written atomically: a kill never leaves a partial file under
the final name.

mmengine's ``LocalBackend.put`` opens ``epoch_N.pth`` and writes into it; a
process killed meanwhile leaves a truncated ``epoch_N.pth`` (and a
``last_checkpoint`` that may name it). :class:`AtomicLocalBackend`, registered
with mmengine's file backends as ``local_atomic``, writes to a temporary file
in the same directory, flushes it to disk, then renames it over the final
name (``os.replace``, atomic on POSIX and Windows). A reader sees the old
file or the whole new one; a failed or killed write leaves at most a
``.<name>.tmp-<pid>`` file, never a partial ``epoch_N.pth``.

Enable it for checkpoints in a config::

    default_hooks = dict(checkpoint=dict(
        type='CheckpointHook', backend_args=dict(backend='local_atomic')))

``CheckpointHook`` then writes the checkpoints through it (and removes old
ones through it); reading is ``LocalBackend``'s. mmengine writes the small
``last_checkpoint`` file itself (``open``), after the checkpoint, so it never
names a partial checkpoint.
"""
import os
import os.path as osp
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

__all__ = ['AtomicLocalBackend', 'atomic_write']


def atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` through a temporary file and a rename.

    Args:
        data: The bytes to write.
        filepath: The final path; its directory is created if missing.
    """
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    tmp = osp.join(directory, f'.{osp.basename(filepath)}.tmp-{os.getpid()}')
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
