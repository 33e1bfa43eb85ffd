"""The one rule for where a checkpoint keeps its weights, and the one
key/shape comparison with a model."""
import pytest
import torch

from projects.internimage.checkpoint.weights import (WEIGHTS_KEYS, compare_keys, find_weights,
                                                     first_of, tensors)

A, B = {'a': torch.zeros(1)}, {'b': torch.zeros(2)}


@pytest.mark.parametrize('checkpoint, key, weights', [
    ({'state_dict': A, 'meta': {}}, 'state_dict', A),
    ({'model': A, 'epoch': 3}, 'model', A),
    ({'state_dict': A, 'model': B}, 'state_dict', A),  # state_dict first
    ({'model': B, 'state_dict': A}, 'state_dict', A),  # whatever the dict's order
    ({'state_dict': 'not weights', 'model': B}, 'model', B),  # only dicts count
    (A, None, A),  # a bare state dict
    ({}, None, {}),
])
def test_find_weights_precedence(checkpoint, key, weights):
    assert WEIGHTS_KEYS == ('state_dict', 'model')
    found_key, found = find_weights(checkpoint)
    assert found_key == key and found is (checkpoint if key is None else checkpoint[key])
    assert found == weights


@pytest.mark.parametrize('checkpoint', [None, [A], torch.zeros(1)])
def test_a_checkpoint_must_be_a_dict(checkpoint):
    with pytest.raises(TypeError, match='a checkpoint must be a dict, got'):
        find_weights(checkpoint)


def test_tensors_skips_other_values():
    assert tensors({'a': A['a'], 'meta': {'x': 1}, 'n': 3}) == A


def test_compare_keys():
    model = {'w': torch.zeros(3, 2), 'b': torch.zeros(3), 'v': torch.zeros(1)}
    weights = {'w': torch.zeros(2, 3), 'x': torch.zeros(5), 'b': torch.zeros(3),
               'meta': {'epoch': 1}}
    shapes, unexpected, missing = compare_keys(weights, model)
    assert shapes == ['w: checkpoint (2, 3) vs model (3, 2)']
    assert unexpected == ['x', 'meta'] and missing == ['v']
    assert compare_keys(model, model) == ([], [], [])


def test_first_of():
    assert first_of(['a', 'b']) == 'a, b'
    assert first_of(map(str, range(7)), shown=3, sep='; ') == '0; 1; 2; ... (4 more)'
