"""Reading checkpoint files safely: refuse damaged files, unpickle no code
unless the file needs it, refuse non-finite weights.

:func:`read_checkpoint` is the one place the project turns a local file into
a checkpoint dict. It reads the file into memory once (the CRC check and the
unpickler both work on that copy) and, in order,

1. refuses a missing, empty or non-checkpoint file (text, a truncated zip
   archive) with an :class:`InvalidCheckpointError` naming the file;
2. verifies the CRC-32 of every record of the zip archive ``torch.save``
   writes. ``torch.load`` does not check them, so a file with flipped bytes
   loads, giving huge weights; here it is refused naming the damaged record.
   Files written with ``torch.serialization.set_crc32_options(False)`` store
   zero CRCs; the check is skipped for them (damage is not detectable there);
3. unpickles with ``weights_only=True`` (no code runs), allowing the
   few non-tensor types mmengine's own checkpoints hold
   (:data:`SAFE_GLOBALS`: numpy arrays and scalars, mmengine's
   ``HistoryBuffer``), so that ``resume`` and ``load_from`` of this
   project's checkpoints need nothing more;
4. only for a file that holds other objects (a reference classification
   checkpoint's yacs config, say), falls back to the full unpickler, with
   one warning line naming the file and the objects: that file's code runs,
   so load only files you trust (``allow_unsafe=False`` refuses instead).

:func:`check_finite` refuses NaN/inf weights naming the key; the project's
loaders (:func:`load_checkpoint_file`) apply it to the model weights of every
checkpoint they read (found by :func:`.weights.find_weights`).
"""
import io
import logging
import os
import os.path as osp
import pickle
import zipfile
from typing import IO, Any, Callable, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import HistoryBuffer, print_log

from .weights import find_weights, tensors

__all__ = ['InvalidCheckpointError', 'SAFE_GLOBALS', 'read_checkpoint', 'verify_crc32',
           'check_finite', 'load_checkpoint_file', 'load_checkpoint_url']


class InvalidCheckpointError(ValueError):
    """A file that is not a valid checkpoint (the message names it)."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to what a pickled ``HistoryBuffer`` needs: its
    statistics methods (pickled as ``getattr(HistoryBuffer, 'mean')``)."""
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) '
        f'{_GETATTR_REFUSED}')


_GETATTR_REFUSED = 'is not allowed in a weights-only checkpoint'


def _numpy_globals() -> List[Tuple[Callable, str]]:
    multiarray = np.core.multiarray
    entries: List[Tuple[Callable, str]] = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    entries += [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    # numpy >= 1.25 pickles dtypes through their classes (numpy.dtypes.*).
    for char in '?bBhHiIlLqQefdgFDGSUV':
        cls = type(np.dtype(char))
        entries.append((cls, f'{cls.__module__}.{cls.__qualname__}'))
    return entries


#: Globals a weights-only load accepts beyond torch's own: what mmengine's
#: checkpoints hold in ``meta`` and ``message_hub`` (numpy arrays and
#: scalars, ``HistoryBuffer``). ``builtins.getattr`` resolves to a version
#: that only returns ``HistoryBuffer``'s statistics methods.
SAFE_GLOBALS: List[Any] = [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
                           (_history_buffer_getattr, '__builtin__.getattr')] + _numpy_globals()


def _invalid(filename: str, reason: str, error: Optional[BaseException] = None
             ) -> InvalidCheckpointError:
    detail = f' ({type(error).__name__}: {error})' if error is not None else ''
    return InvalidCheckpointError(f'{filename} is not a valid checkpoint: {reason}{detail}')


def verify_crc32(archive_file: Union[str, IO[bytes]], filename: Optional[str] = None) -> None:
    """Check the CRC-32 of every record of a ``torch.save`` zip archive.

    Args:
        archive_file: Path of a zip-format checkpoint, or the file's bytes
            as a binary file object.
        filename: Named in the error (default: ``archive_file``, a path).

    Raises:
        InvalidCheckpointError: a record fails its check, or the archive
            cannot be read.
    """
    filename = str(archive_file) if filename is None else filename
    try:
        with zipfile.ZipFile(archive_file) as archive:
            infos = archive.infolist()
            if all(i.CRC == 0 for i in infos if i.file_size > 0):
                return  # written without CRCs (set_crc32_options(False))
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise _invalid(filename, 'its zip archive is damaged', e) from e
    if bad is not None:
        raise _invalid(filename, f'record {bad!r} fails its CRC-32 check (the file is '
                       'damaged: flipped or overwritten bytes)')


def checkpoint_problem(filename: str) -> Optional[str]:
    """Why ``filename`` is not a complete checkpoint, or None if it is.

    Checks what can be checked without unpickling: the file exists and is
    not empty, and (zip format) every record passes its CRC-32 check, which
    also catches a truncated file. A legacy (non-zip) file is read with
    :func:`read_checkpoint`.

    Args:
        filename: Path of the file.

    Returns:
        ``'does not exist'``, ``'is empty'`` or ``'is not a valid checkpoint
        (...)'``; None for a readable file.
    """
    if not osp.isfile(filename):
        return 'does not exist'
    if osp.getsize(filename) == 0:
        return 'is empty'
    try:
        with open(filename, 'rb') as f:
            is_zip = f.read(4).startswith(b'PK\x03\x04')
        if is_zip:
            verify_crc32(filename)
        else:
            read_checkpoint(filename, map_location='cpu')
    except (InvalidCheckpointError, OSError) as e:
        return f'is not a valid checkpoint ({e})'
    return None


def _unsafe_globals(data: bytes) -> List[str]:
    """Globals of a zip checkpoint that even :data:`SAFE_GLOBALS` does not allow."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data)))


def read_checkpoint(filename: str, map_location: Any = None, allow_unsafe: bool = True
                    ) -> Any:
    """Load a local checkpoint file (see the module docstring).

    Args:
        filename: Path of the file (``~`` is expanded).
        map_location: As ``torch.load``'s.
        allow_unsafe: Fall back to the full unpickler (runs code in the file)
            for files that hold objects beyond :data:`SAFE_GLOBALS`. When
            False, such files raise :class:`InvalidCheckpointError`.

    Returns:
        What ``torch.load`` returns.

    Raises:
        FileNotFoundError: no such file.
        InvalidCheckpointError: empty, not a checkpoint, damaged, or (with
            ``allow_unsafe=False``) needs the full unpickler.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with open(filename, 'rb') as f:
        data = f.read()  # the one read of the file
    if not data:
        raise _invalid(filename, 'the file is empty')
    head = data[:4]
    is_zip = head.startswith(b'PK\x03\x04')
    if is_zip:
        verify_crc32(io.BytesIO(data), filename)
    elif not head.startswith(b'\x80'):
        # Neither torch's zip format nor its legacy (pickle) format.
        raise _invalid(filename, f'it starts with {head!r}, neither a zip archive nor a '
                       'pickle (a text or other file?)')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        weights_only_error = e
    except Exception as e:  # torch raises RuntimeError, EOFError, KeyError, ...
        raise _invalid(filename, 'torch cannot read it', e) from e
    unsafe = _find_unsafe(data, is_zip, weights_only_error)
    if not unsafe:
        raise _invalid(filename, 'its pickle is damaged', weights_only_error) \
            from weights_only_error
    if not allow_unsafe:
        raise _invalid(filename, f'it holds objects a weights-only load refuses '
                       f'({", ".join(unsafe)}) and allow_unsafe is False')
    print_log(f'InternImage: {filename} holds objects beyond tensors ({", ".join(unsafe)}): '
              'loading it with the full unpickler (weights_only=False), which runs code '
              'from the file; load only files you trust', logger='current',
              level=logging.WARNING)
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
    except Exception as e:
        raise _invalid(filename, 'torch cannot read it', e) from e


def _find_unsafe(data: bytes, is_zip: bool, error: Exception) -> List[str]:
    """Why a weights-only load failed: the disallowed globals ([] = damage)."""
    text = str(error)
    found = []
    if _GETATTR_REFUSED in text:  # our limited getattr refused the call
        found.append('builtins.getattr(' + text.split('getattr(', 1)[1].split(')', 1)[0] + ')')
    if is_zip:
        try:
            found += _unsafe_globals(data)
        except Exception:
            pass
    else:  # legacy (non-zip) format: only the error message tells
        marker = 'Unsupported global: GLOBAL '
        if marker in text:
            found.append(text.split(marker, 1)[1].split()[0])
    return found


def check_finite(weights: Mapping[str, torch.Tensor], filename: str = '<checkpoint>') -> None:
    """Refuse NaN or infinite values.

    Args:
        weights: Key -> tensor.
        filename: Named in the error.

    Raises:
        InvalidCheckpointError: naming the first keys that hold NaN or inf.
    """
    bad = []
    for key, value in weights.items():
        if value.is_floating_point() or value.is_complex():
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                count = int((~finite).sum())
                bad.append(f'{key} ({count} of {value.numel()} values)')
    if bad:
        more = f' and {len(bad) - 5} more' if len(bad) > 5 else ''
        raise InvalidCheckpointError(
            f'{filename} is not a valid checkpoint: NaN or inf in {len(bad)} tensor(s): '
            + ', '.join(bad[:5]) + more)


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """The project's loader of local checkpoint files (``load_from``,
    ``resume``, ``init_cfg`` Pretrained, ``tools/test.py CONFIG CKPT``):
    :func:`read_checkpoint`, then :func:`check_finite` on the model weights
    (:func:`.weights.find_weights`), then the reference-format conversion of
    :mod:`.converters`.

    Args:
        filename: Path of the file.
        map_location: As ``torch.load``'s.
    """
    from .converters import convert_checkpoint
    filename = osp.expanduser(str(filename))
    checkpoint = read_checkpoint(filename, map_location=map_location)
    if isinstance(checkpoint, Mapping):
        check_finite(tensors(find_weights(checkpoint)[1]), filename)
    return convert_checkpoint(checkpoint, filename)


def load_checkpoint_url(filename: str, map_location: Any = None,
                        model_dir: Optional[str] = None) -> Any:
    """Download ``filename`` to torch hub's checkpoint cache (rank 0 first,
    the others after a barrier) and read it with :func:`load_checkpoint_file`.

    Args:
        filename: An http(s) URL.
        map_location: As ``torch.load``'s.
        model_dir: Cache directory (default: ``<torch hub dir>/checkpoints``).
    """
    from torch.hub import download_url_to_file, get_dir
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))

    def download() -> None:
        if not osp.isfile(cached):
            os.makedirs(model_dir, exist_ok=True)
            download_url_to_file(filename, cached, progress=False)

    rank, world_size = get_dist_info()
    if rank == 0:
        download()
    if world_size > 1:
        barrier()
        if rank > 0:
            download()
    return load_checkpoint_file(cached, map_location=map_location)
