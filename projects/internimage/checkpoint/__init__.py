"""Checkpoints: reading files safely (:mod:`.reader`), finding the weights
inside them and comparing them with a model (:mod:`.weights`), loading
pretrained backbones (:mod:`.pretrained`), refusing ``load_from``
checkpoints that do not fit (:mod:`.strict_load`, ``StrictLoadRunner``), and
converting the reference's layouts (:mod:`.converters`), and cutting a
backbone checkpoint out of a trained model's (:mod:`.extract`)."""
from .converters import FORMATS, convert_checkpoint, convert_file, detect_format
from .extract import extract_backbone
from .pretrained import load_pretrained
from .reader import (InvalidCheckpointError, check_finite, load_checkpoint_file,
                     load_checkpoint_url, read_checkpoint)
from .strict_load import StrictLoadRunner, check_checkpoint_fits, checkpoint_mismatch
from .weights import WEIGHTS_KEYS, compare_keys, find_weights

__all__ = ['FORMATS', 'convert_checkpoint', 'convert_file', 'detect_format', 'extract_backbone',
           'load_pretrained',
           'InvalidCheckpointError', 'check_finite', 'load_checkpoint_file',
           'load_checkpoint_url', 'read_checkpoint', 'StrictLoadRunner', 'check_checkpoint_fits',
           'checkpoint_mismatch', 'WEIGHTS_KEYS', 'compare_keys', 'find_weights']
