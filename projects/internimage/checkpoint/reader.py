"""Reading checkpoint files safely: refuse damaged files, never run code
from a file unless the user trusts it, refuse non-finite weights.

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
3. unpickles with ``weights_only=True`` (no code runs), allowing beyond
   torch's own types exactly those the checkpoints of mmengine, mmcv 1.x
   (mmdet 2.x, mmseg 0.x) and the reference's classification training carry
   (:data:`SAFE_GLOBALS`, listed in ``docs/loading_and_resume.md``);
4. refuses any other file with one :class:`UnsafeCheckpointError` naming
   the file and the first global it would import (a legacy-format or raw
   pickle too: "not allowed", not "damaged"), saying how to trust it:
   the environment variable :data:`TRUST_ENV` or the config key
   :data:`TRUST_CFG_KEY` (``--cfg-options``); a trusted file is loaded with
   the full unpickler (its code runs), with one warning.

:func:`check_finite` refuses NaN/inf weights naming the key; the project's
loaders (:func:`load_checkpoint_file`) apply it to the model weights of every
checkpoint they read (found by :func:`.weights.find_weights`).
"""
import io
import logging
import os
import os.path as osp
import pickle
import pickletools
import warnings
import zipfile
from collections import OrderedDict
from typing import (IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import HistoryBuffer, print_log

from .weights import find_weights, tensors

__all__ = ['InvalidCheckpointError', 'UnsafeCheckpointError', 'SAFE_GLOBALS', 'TRUST_ENV',
           'TRUST_CFG_KEY', 'allowed_global_names', 'trust_checkpoints', 'is_trusted',
           'pickle_globals', 'read_checkpoint', 'verify_crc32', 'checkpoint_problem',
           'check_finite', 'load_checkpoint_file', 'load_checkpoint_url']

#: Environment variable naming trusted checkpoint files (paths or URLs,
#: separated by ``os.pathsep``), which may be loaded with the full unpickler.
TRUST_ENV = 'INTERNIMAGE_TRUSTED_CHECKPOINTS'
#: Config key (``--cfg-options trusted_checkpoints=PATH``, or a list) with
#: the same meaning; the tools apply it (:func:`trust_checkpoints`).
TRUST_CFG_KEY = 'trusted_checkpoints'


class InvalidCheckpointError(ValueError):
    """A file that is not a valid checkpoint (the message names it)."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint whose pickle imports a global that a weights-only load
    does not allow (the message names the file, the global and how to
    trust the file)."""


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


class _ReferenceConfig:
    """What a pickled ``yacs.config.CfgNode`` (the reference's
    classification training config, ``checkpoint['config']``) becomes: an
    ``OrderedDict`` of its values (nested nodes likewise), with the node's
    flags as attributes. No yacs code runs, and yacs need not be installed."""

    def __new__(cls, *args: Any) -> 'OrderedDict':  # type: ignore[misc]
        return OrderedDict()


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


#: Globals a weights-only load accepts beyond torch's own (tensors, storages,
#: ``collections.OrderedDict``, ``builtins.set``...), found in the real files:
#:
#: - mmengine (``Runner.save_checkpoint``): numpy arrays, scalars and dtypes
#:   (``meta``, the message hub's values) and ``HistoryBuffer`` (the message
#:   hub's logs), whose statistics methods are pickled as
#:   ``getattr(HistoryBuffer, name)``: ``builtins.getattr`` resolves to a
#:   version that returns those methods only;
#: - mmcv 1.x (mmdet 2.x, mmseg 0.x, the reference's detection and
#:   segmentation checkpoints): ``OrderedDict`` state dicts with
#:   ``_metadata`` (torch's own), numpy scalars (mmseg 0.x's ``best_score``);
#: - the reference's classification training: its yacs config
#:   (``yacs.config.CfgNode``, read as :class:`_ReferenceConfig`).
SAFE_GLOBALS: List[Any] = [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
                           (_history_buffer_getattr, '__builtin__.getattr'),
                           (_ReferenceConfig, 'yacs.config.CfgNode')] + _numpy_globals()


def allowed_global_names() -> List[str]:
    """The globals (``module.name``) a weights-only load of this reader
    accepts: :data:`SAFE_GLOBALS` and torch's own."""
    from torch import _weights_only_unpickler
    names = set(_weights_only_unpickler._get_allowed_globals())
    for entry in SAFE_GLOBALS:
        names.add(entry[1] if isinstance(entry, tuple) else
                  f'{entry.__module__}.{entry.__qualname__}')
    return sorted(names)


_trusted_by_config: List[str] = []


def trust_checkpoints(entries: Union[None, str, Sequence[str]]) -> None:
    """Trust the checkpoint files a config lists under :data:`TRUST_CFG_KEY`
    (replacing an earlier list; the environment variable :data:`TRUST_ENV`
    counts as well).

    Args:
        entries: A path or URL, a list of them, or None.

    Raises:
        TypeError: ``entries`` is something else.
    """
    if entries is None:
        entries = []
    elif isinstance(entries, str):
        entries = [entries]
    elif not (isinstance(entries, (list, tuple))
              and all(isinstance(e, str) for e in entries)):
        raise TypeError(f'{TRUST_CFG_KEY} must be a path or a list of paths, '
                        f'got {entries!r}')
    _trusted_by_config[:] = list(entries)


def _same_file(entry: str, filename: str) -> bool:
    return osp.realpath(osp.expanduser(entry)) == osp.realpath(osp.expanduser(filename))


def is_trusted(filename: str, source: Optional[str] = None) -> bool:
    """Whether ``filename`` (downloaded from ``source``) was declared trusted
    through :data:`TRUST_ENV` or :data:`TRUST_CFG_KEY`.

    Args:
        filename: The local file.
        source: The URL it was downloaded from, if any.
    """
    entries = [e for e in os.environ.get(TRUST_ENV, '').split(os.pathsep) if e]
    entries += _trusted_by_config
    return any(e == source or _same_file(e, filename) for e in entries)


_STRING_OPS = {'SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE', 'SHORT_BINSTRING',
               'BINSTRING', 'STRING'}
_RENAMED = {'__builtin__': 'builtins', 'copy_reg': 'copyreg'}


def pickle_globals(data: bytes, is_zip: bool) -> List[str]:
    """The globals (``module.name``) the pickle of a checkpoint imports, in
    the order the unpickler meets them.

    Args:
        data: The file's bytes.
        is_zip: Zip format (the pickle is its ``data.pkl`` record); else a
            legacy-format file (a few pickles in a row) or a raw pickle.

    Returns:
        The names; those after a point the stream cannot be parsed are
        missing.
    """
    if is_zip:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            name = next((n for n in archive.namelist() if n.endswith('data.pkl')), None)
            streams = [io.BytesIO(archive.read(name))] if name else []
        count = 1
    else:
        streams, count = [io.BytesIO(data)], 5  # legacy: magic, version, info, object, keys
    found: List[str] = []
    for stream in streams:
        for _ in range(count):
            strings: List[str] = []
            memo: Dict[int, Any] = {}
            last: Any = None
            try:
                for opcode, arg, _pos in pickletools.genops(stream):
                    op = opcode.name
                    if op in _STRING_OPS:
                        last = arg
                        strings.append(arg)
                    elif op in ('BINPUT', 'LONG_BINPUT', 'PUT'):
                        memo[int(arg)] = last
                    elif op == 'MEMOIZE':
                        memo[len(memo)] = last
                    elif op in ('BINGET', 'LONG_BINGET', 'GET'):
                        last = memo.get(int(arg))
                        if isinstance(last, str):
                            strings.append(last)
                    elif op in ('GLOBAL', 'INST'):
                        module, _, attr = str(arg).partition(' ')
                        found.append(f'{_RENAMED.get(module, module)}.{attr}')
                        last = None
                    elif op == 'STACK_GLOBAL':
                        module, attr = strings[-2:] if len(strings) >= 2 else ('?', '?')
                        found.append(f'{_RENAMED.get(module, module)}.{attr}')
                        last = None
                    else:
                        last = None
            except Exception:
                return found
    return found


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
    except (InvalidCheckpointError, UnsafeCheckpointError, OSError) as e:
        return f'is not a valid checkpoint ({e})'
    return None


def _refused_global(data: bytes, is_zip: bool, error: Exception) -> Optional[str]:
    """The global a weights-only load refused (None: the pickle is damaged)."""
    text = str(error)
    if _GETATTR_REFUSED in text:  # our limited getattr refused the call
        return 'builtins.getattr(' + text.split('getattr(', 1)[1].split(')', 1)[0] + ')'
    allowed = set(allowed_global_names())
    return next((g for g in pickle_globals(data, is_zip) if g not in allowed), None)


def _not_allowed(filename: str, name: str, source: Optional[str] = None
                 ) -> UnsafeCheckpointError:
    origin = f' (downloaded from {source})' if source else ''
    trusted = source or filename
    return UnsafeCheckpointError(
        f'{filename}{origin} is not allowed: its pickle imports {name}, which a weights-only '
        'load refuses (unpickling it could run code from the file). Only if you trust this '
        f'file, allow it with the environment variable {TRUST_ENV}={trusted} or with '
        f'--cfg-options {TRUST_CFG_KEY}={trusted} (see docs/loading_and_resume.md)')


def read_checkpoint(filename: str, map_location: Any = None,
                    allow_unsafe: Optional[bool] = None, source: Optional[str] = None) -> Any:
    """Load a local checkpoint file (see the module docstring).

    Args:
        filename: Path of the file (``~`` is expanded).
        map_location: As ``torch.load``'s.
        allow_unsafe: Whether a file holding globals beyond
            :data:`SAFE_GLOBALS` may be loaded with the full unpickler (which
            runs code from the file). None (default): only if the file is
            trusted (:func:`is_trusted`).
        source: The URL the file was downloaded from (may be the trusted name).

    Returns:
        What ``torch.load`` returns.

    Raises:
        FileNotFoundError: no such file.
        InvalidCheckpointError: empty, not a checkpoint, or damaged.
        UnsafeCheckpointError: holds a global that is not allowed, and is
            not trusted.
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
        with torch.serialization.safe_globals(SAFE_GLOBALS), warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'Detected pickle protocol')
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        weights_only_error: Exception = e
    except Exception as e:  # torch raises RuntimeError, EOFError, KeyError, ...
        refused = _refused_global(data, is_zip, e)
        if refused is None:
            raise _invalid(filename, 'torch cannot read it', e) from e
        weights_only_error = e
    refused = _refused_global(data, is_zip, weights_only_error)
    if refused is None:
        raise _invalid(filename, 'its pickle is damaged', weights_only_error) \
            from weights_only_error
    if not (is_trusted(filename, source) if allow_unsafe is None else allow_unsafe):
        raise _not_allowed(filename, refused, source) from None
    print_log(f'InternImage: {filename} is trusted ({TRUST_ENV} / {TRUST_CFG_KEY}) and imports '
              f'{refused}: loading it with the full unpickler (weights_only=False), which runs '
              'code from the file', logger='current', level=logging.WARNING)
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
    except Exception as e:
        raise _invalid(filename, 'torch cannot read it', e) from e


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


def load_checkpoint_file(filename: str, map_location: Any = None,
                         source: Optional[str] = None) -> Any:
    """The project's loader of local checkpoint files (``load_from``,
    ``resume``, ``init_cfg`` Pretrained, ``tools/test.py CONFIG CKPT``):
    :func:`read_checkpoint`, then :func:`check_finite` on the model weights
    (:func:`.weights.find_weights`), then the reference-format conversion of
    :mod:`.converters`.

    Args:
        filename: Path of the file.
        map_location: As ``torch.load``'s.
        source: The URL the file was downloaded from, if any.
    """
    from .converters import convert_checkpoint
    filename = osp.expanduser(str(filename))
    checkpoint = read_checkpoint(filename, map_location=map_location, source=source)
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
    return load_checkpoint_file(cached, map_location=map_location, source=filename)
