"""What a data check found: problems (data that would be dropped or misread)
and notes (worth knowing, dropped by design), each with the files."""
from dataclasses import dataclass, field
from typing import Dict, List

__all__ = ['DataReport']


@dataclass
class DataReport:
    """Findings of a data check, by kind.

    Attributes:
        name: What was checked (e.g. ``'train: data/coco/annotations/x.json'``).
        counts: Totals (``images``, ``annotations``...).
        problems: Kind -> ``'<file>: <detail>'`` entries that would be dropped
            or misread.
        notes: Kind -> entries that are fine but worth knowing.
    """
    name: str
    counts: Dict[str, int] = field(default_factory=dict)
    problems: Dict[str, List[str]] = field(default_factory=dict)
    notes: Dict[str, List[str]] = field(default_factory=dict)

    def problem(self, kind: str, entry: str) -> None:
        """Record a problem of ``kind``."""
        self.problems.setdefault(kind, []).append(entry)

    def note(self, kind: str, entry: str) -> None:
        """Record a note of ``kind``."""
        self.notes.setdefault(kind, []).append(entry)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def format(self, shown: int = 10) -> str:
        """The report as text: the counts, then each kind with its count and
        its first ``shown`` entries.

        Args:
            shown: Entries listed per kind.
        """
        lines = [f'{self.name}: ' + ', '.join(f'{v} {k}' for k, v in self.counts.items())]
        for title, found in (('PROBLEM', self.problems), ('note', self.notes)):
            for kind, entries in found.items():
                lines.append(f'  {title}: {len(entries)} {kind}')
                lines += [f'    {e}' for e in entries[:shown]]
                if len(entries) > shown:
                    lines.append(f'    ... ({len(entries) - shown} more)')
        if self.ok:
            lines.append('  no problem found')
        return '\n'.join(lines)
