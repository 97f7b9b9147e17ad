"""The bad-input table: every error the test suite provokes on purpose, with its message.

Runs pytest with a plugin that records each ``pytest.raises`` block that caught its error: the
test, the exception type and the message's first line. Prints a Markdown table grouped by test
module (the entry point or component under test) and the count of rows. Rows checked through a
subprocess's output (``tools/train.py``/``tools/test.py`` exits) are not ``pytest.raises`` blocks
and are not listed; their tests are in tests/test_bad_inputs.py and tests/test_tools.

    python tools/analysis/bad_input_table.py                     # every test module with a row
    python tools/analysis/bad_input_table.py tests/test_bad_inputs.py --out table.md
"""
import argparse
import contextlib
import glob
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class RaisesRecorder:
    """pytest plugin: wraps ``pytest.raises`` (context-manager form) to record what it caught."""

    def __init__(self) -> None:
        self.rows: List[Dict[str, str]] = []
        self.test = ''
        self._raises = pytest.raises
        pytest.raises = self._recording_raises

    def pytest_runtest_setup(self, item) -> None:
        self.test = item.nodeid

    def pytest_unconfigure(self, config) -> None:
        pytest.raises = self._raises

    def _recording_raises(self, *args, **kwargs):
        if len(args) > 1 or 'func' in kwargs:  # the callable form records nothing
            return self._raises(*args, **kwargs)
        return self._record(*args, **kwargs)

    @contextlib.contextmanager
    def _record(self, *args, **kwargs):
        with self._raises(*args, **kwargs) as info:
            yield info
        error = info.value
        # KeyError's str() is the repr of its key: show the message as written
        text = (error.args[0] if isinstance(error, KeyError) and error.args
                and isinstance(error.args[0], str) else str(error)).strip()
        self.rows.append(
            dict(
                test=self.test,
                type=info.type.__name__,
                message=text.splitlines()[0] if text else '(no message)'))


def markdown(rows: List[Dict[str, str]]) -> str:
    """Rows grouped by test module: ``| test | exception | message |``."""
    by_module = defaultdict(list)
    for row in rows:
        by_module[row['test'].split('::')[0]].append(row)
    lines = [
        f'{len(rows)} rows in {len({r["test"] for r in rows})} tests of {len(by_module)} '
        'modules', ''
    ]
    for module, module_rows in sorted(by_module.items()):
        lines += [
            f'### {module} ({len(module_rows)})', '', '| test | exception | message |',
            '|---|---|---|'
        ]
        for row in module_rows:
            message = row['message'].replace('|', '\\|')
            message = message if len(message) <= 160 else message[:157] + '...'
            lines.append(f'| {row["test"].split("::", 1)[1]} | {row["type"]} | {message} |')
        lines.append('')
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('paths', nargs='*', help='test files (default: every one with a row)')
    parser.add_argument('--out', help='write the table here as well')
    args = parser.parse_args()
    paths = args.paths or sorted(
        p for p in glob.glob(osp.join(REPO, 'tests', '**', 'test_*.py'), recursive=True)
        if 'pytest.raises' in open(p, encoding='utf-8').read())
    recorder = RaisesRecorder()
    code = pytest.main(['-q', '-p', 'no:cacheprovider', *paths], plugins=[recorder])
    table = markdown(recorder.rows)
    print(table)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(table + '\n')
    return int(code)


if __name__ == '__main__':
    sys.exit(main())
