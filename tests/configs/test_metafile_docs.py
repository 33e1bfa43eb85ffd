"""The published facts in the documentation agree with ``configs/metafile.yml``.

Every markdown table of README.md, configs/README.md and docs/*.md is parsed;
a row that names a model-zoo config (a link, a file name or the bare name) has
each cell under a known column compared with that config's metafile entry
(results, #param, FLOPs, backbone, method, schedule, crop, optimizer,
checkpoint file). Each document must keep the columns it is known to show, so
that renaming a column cannot switch its check off. The checkpoint addresses
and expected metrics written in the prose are checked too.
"""
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = [REPO_ROOT / 'README.md', REPO_ROOT / 'configs' / 'README.md'] + sorted(
    (REPO_ROOT / 'docs').glob('*.md'))
ZOO_NAMES = sorted(p.stem for d in ('coco', 'ade20k', 'coco_stuff164k')
                   for p in (REPO_ROOT / 'configs' / d).glob('*.py'))
#: Longest first, so that no name matches inside another.
NAME_RE = re.compile(r'(?<![\w.])(' + '|'.join(
    re.escape(n) for n in sorted(ZOO_NAMES, key=len, reverse=True)) + r')(?![\w])')
HUB = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
NONE = '–'  # what the tables write for a figure that was not published


def tables(text: str) -> Iterator[Tuple[List[str], List[List[str]]]]:
    """The markdown tables of ``text``: (header cells, body rows of cells)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if (lines[i].startswith('|') and i + 1 < len(lines)
                and re.fullmatch(r'\|(\s*:?-+:?\s*\|)+', lines[i + 1].strip())):
            header = split_row(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith('|'):
                rows.append(split_row(lines[i]))
                i += 1
            yield header, rows
        else:
            i += 1


def split_row(line: str) -> List[str]:
    return [c.strip() for c in line.strip().strip('|').split('|')]


def fig(value: Optional[float]) -> str:
    return NONE if value is None else f'{value:.1f}'


def lr_wd_decay(model) -> str:
    parts = [model.get('Learning Rate'), model.get('Weight Decay')]
    if model.get('Layer Decay') is not None:
        parts.append(model.get('Layer Decay'))
    return ' / '.join(repr(float(p)) for p in parts)


def parse_lr_wd_decay(cell: str) -> str:
    """``'2e-4 / 0.05 / 0.90, EMA'`` -> ``'0.0002 / 0.05 / 0.9'``."""
    return ' / '.join(repr(float(p)) for p in cell.split(',')[0].split(' / '))


def schedule(model) -> str:
    if model.get('Epochs') is not None:
        return f"{model.get('Epochs') // 12}x"
    return f"{model.get('Iterations') // 1000}k"


def crop(cell: str) -> str:
    """``'512×512'`` or ``'512'`` -> ``'512x512'``."""
    side = cell.split('×')
    return f'{side[0]}x{side[-1]}'


def checkpoint_cell(cell: str) -> Optional[str]:
    """The file of a checkpoint cell (None for ``not published``)."""
    if cell.startswith('not published'):
        return None
    match = re.match(r'`([\w.]+\.pth)`', cell)
    assert match, f'checkpoint cell {cell!r}'
    return match.group(1)


def metric(model, name: str) -> Optional[float]:
    return model.metrics.get(name)


#: column header -> (what the cell shows, what the metafile says), each a
#: function of the cell text / of the model; None skips a cell.
COLUMNS: Dict[str, Tuple[Callable, Callable]] = {
    'box mAP': (str, lambda m: fig(metric(m, 'box AP'))),
    'mask mAP': (str, lambda m: fig(metric(m, 'mask AP'))),
    'box / mask mAP': (str, lambda m: f"{fig(metric(m, 'box AP'))} / "
                       f"{fig(metric(m, 'mask AP'))}"),
    'mIoU': (str, lambda m: fig(metric(m, 'mIoU'))),
    'mIoU (ms + flip)': (str, lambda m: fig(metric(m, 'mIoU(ms+flip)'))),
    'mIoU single / multi-scale': (str, lambda m: f"{fig(metric(m, 'mIoU'))} / "
                                  f"{fig(metric(m, 'mIoU(ms+flip)'))}"),
    '#param': (str, lambda m: m.get('Parameters')),
    'FLOPs': (str, lambda m: m.get('FLOPs', NONE)),
    # 'InternImage-XL' (results tables) or 'XL, drop path 0.6' (recipes);
    # 'CB-InternImage-H' or 'CB-H: two H composed' (composite backbone)
    'backbone': (lambda c: c.split(',')[0].split(':')[0].replace('InternImage-', '').lower(),
                 lambda m: ('cb-' if m.composite else '') + m.variant),
    'method': (lambda c: c.split(' (')[0].split(' 4-scale')[0], lambda m: m.collection),
    'schedule': (lambda c: c if re.fullmatch(r'\d+[xk]', c) else None, schedule),
    'crop': (crop, lambda m: m.get('Crop Size')),
    'lr / wd / layer decay': (parse_lr_wd_decay, lr_wd_decay),
    'grad clip': (lambda c: None if c == NONE else float(c),
                  lambda m: m.get('Gradient Clip')),
    'checkpoint (`HUB/` + file)': (checkpoint_cell, lambda m: m.weights and
                                   m.weights.rsplit('/', 1)[1]),
}
#: The columns each document must show in every row of a detection ('det')
#: and a segmentation ('seg') config; each zoo config has exactly one row
#: in these documents.
EXPECTED = {
    'configs/README.md': {
        'det': {'backbone', 'method', 'schedule', 'box mAP', 'mask mAP', '#param', 'FLOPs'},
        'seg': {'backbone', 'method', 'schedule', 'crop', 'mIoU', 'mIoU (ms + flip)',
                '#param', 'FLOPs'}},
    'docs/checkpoints.md': {
        'det': {'checkpoint (`HUB/` + file)', 'box / mask mAP'},
        'seg': {'checkpoint (`HUB/` + file)', 'mIoU single / multi-scale'}},
    'docs/model_zoo.md': {
        'det': {'backbone', 'lr / wd / layer decay', 'grad clip'},
        'seg': {'backbone', 'crop', 'lr / wd / layer decay', 'grad clip'}},
}


def zoo_rows(doc: Path) -> Iterator[Tuple[List[str], List[str], List[str]]]:
    """(header, row, the zoo configs the row names) of every table row of
    ``doc`` that names a zoo config. ``same`` repeats the cell above."""
    for header, rows in tables(doc.read_text()):
        previous: List[str] = []
        for row in rows:
            assert len(row) == len(header), f'{doc.name}: row {row} does not fit {header}'
            row = [p if c == 'same' and p else c
                   for c, p in zip(row, previous or row)]
            previous = row
            names = NAME_RE.findall(' | '.join(row))
            if names:
                yield header, row, sorted(set(names))


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_tables_agree_with_metafile(doc, zoo):
    expected = EXPECTED.get(str(doc.relative_to(REPO_ROOT)))
    rows_of: Dict[str, int] = {}
    for header, row, names in zoo_rows(doc):
        for name in names:
            model = zoo[name]
            rows_of[name] = rows_of.get(name, 0) + 1
            checked = set()
            for column, cell in zip(header, row):
                if column not in COLUMNS:
                    continue
                shown, published = COLUMNS[column]
                value = shown(cell)
                if value is None and column == 'schedule':
                    continue  # a recipe's own words ('12 ep, steps 8, 11')
                checked.add(column)
                assert value == published(model), (
                    f'{doc.name}: {name}: column {column!r} says {cell!r}, '
                    f'metafile: {published(model)!r}')
            if expected:
                kind = 'det' if 'box AP' in model.metrics else 'seg'
                assert expected[kind] <= checked, (
                    f'{doc.name}: {name}: no column {expected[kind] - checked}')
    if expected:
        assert rows_of == {n: 1 for n in ZOO_NAMES}, f'{doc.name}: rows per config {rows_of}'


def test_pretrained_backbone_table(zoo):
    """docs/model_zoo.md's table of pretrained backbones gives each variant
    the file that its configs' Pretrained Backbone names."""
    doc = (REPO_ROOT / 'docs' / 'model_zoo.md').read_text()
    table = next(rows for header, rows in tables(doc) if header == ['arch', 'file'])
    files = {arch.lower(): cell.strip('`') for arch, cell in table}
    used = {(m.variant, m.get('Pretrained Backbone')) for m in zoo.values()
            if m.get('Pretrained Backbone')}
    assert {(v, HUB + f) for v, f in files.items()} == used


def test_hub_addresses_in_the_prose_are_published(zoo):
    """Every checkpoint address written out in the documents is a Weights, a
    Pretrained Backbone or a Pretrained Detector of the metafile."""
    known = {m.weights for m in zoo.values()} | {
        m.get(field) for m in zoo.values()
        for field in ('Pretrained Backbone', 'Pretrained Detector')}
    found = 0
    for doc in DOCS:
        text = re.sub(r"'\s*\n\s*'", '', doc.read_text())  # joined string literals
        for address in re.findall(re.escape(HUB) + r'[\w.]+', text):
            found += 1
            assert address in known, f'{doc.name}: {address} is not in the metafile'
    assert found >= 3


def test_expected_metrics_in_the_prose(zoo):
    """``# expected: coco/bbox_mAP 0.472, ...`` under a test command is the
    metafile's result of the config the command tests."""
    names = {'coco/bbox_mAP': 'box AP', 'coco/segm_mAP': 'mask AP', 'mIoU': 'mIoU'}
    found = 0
    for doc in DOCS:
        for config, expected in re.findall(
                r'tools/test\.py configs/\w+/([\w.]+)\.py[^\n]*(?:\n[^\n#`]*)*\n# expected: ([^\n(]+)',
                doc.read_text()):
            for item in expected.split(','):
                key, value = item.split()
                assert float(value) * 100 == pytest.approx(zoo[config].metrics[names[key]]), (
                    f'{doc.name}: {config}: {item}')
                found += 1
    assert found >= 2
