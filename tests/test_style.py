"""One code style, checked: the tree is formatted, lint-free, and documents argument types.

The formatter (yapf), import sorter (isort) and linter (flake8) are configured in setup.cfg and
pinned in requirements/tests.txt. To reformat after a change::

    isort mmcora tools tests bench setup.py && yapf -r -i mmcora tools tests bench setup.py

Docstrings are Google style as OpenMMLab writes them: each entry of an ``Args:`` section is
``name (type): description`` (``mask (np.ndarray | None): ...``, ``cfg (dict, optional): ...``).
Entries that document several arguments at once share one type
(``sam_mean, sam_std (Sequence[float]): ...``).
"""
import ast
import glob
import os.path as osp
import re
import subprocess
import sys
from typing import Iterator, List, Tuple

from .conftest import REPO

# Folders (and files) whose docstrings are checked, relative to the repository root.
DOC_SCOPE = ('mmcora', 'tools', 'bench', 'tests')
# What yapf, isort and flake8 check (see setup.cfg).
FORMAT_SCOPE = ('mmcora', 'tools', 'tests', 'bench', 'configs', 'setup.py')
# Lines of a diff or report shown when a check fails.
SHOWN_LINES = 60

# ``name (type):`` or ``*args (type):`` / ``**kwargs (type):``; several names are joined by
# ``, `` or `` / ``. The description may start on the next line.
TYPED_ENTRY = re.compile(r'\*{0,2}\w+(?:(?:, | / )\*{0,2}\w+)* \([^()]+\):(?: |$)')
SECTION_HEADER = re.compile(r'[A-Z][A-Za-z ]*:$')


def python_files(scope=DOC_SCOPE) -> List[str]:
    files = []
    for entry in scope:
        path = osp.join(REPO, entry)
        if osp.isfile(path):
            files.append(path)
        else:
            files.extend(glob.glob(osp.join(path, '**', '*.py'), recursive=True))
    return sorted(files)


def args_entries(source: str) -> Iterator[Tuple[int, str]]:
    """Yield ``(line number, text)`` of every entry of every ``Args:`` section in ``source``.

    An entry is a line at the section's first indentation level; deeper lines continue it.
    The section ends at the first line indented no deeper than ``Args:`` (``Returns:``, the
    closing quotes) or at another header at the entries' level.
    """
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if ast.get_docstring(node, clean=False) is None:
            continue
        docstring = node.body[0].value
        lines = source.split('\n')[docstring.lineno - 1:docstring.end_lineno]
        section_indent = entry_indent = None
        for offset, line in enumerate(lines):
            text = line.strip().rstrip('"\'').rstrip() if offset == len(lines) - 1 else \
                line.strip()
            indent = len(line) - len(line.lstrip())
            if section_indent is None:
                if text == 'Args:':
                    section_indent = indent
                continue
            if not text:
                continue
            if indent <= section_indent:
                section_indent = entry_indent = None
                if text == 'Args:':  # a second section in the same docstring
                    section_indent = indent
                continue
            if entry_indent is None:
                entry_indent = indent
            if indent < entry_indent or (indent == entry_indent and SECTION_HEADER.match(text)):
                section_indent = entry_indent = None
            elif indent == entry_indent:
                yield docstring.lineno + offset, text


def untyped_entries(path: str) -> List[str]:
    with open(path, encoding='utf-8') as f:
        source = f.read()
    return [
        f'{osp.relpath(path, REPO)}:{lineno}: {text[:80]}' for lineno, text in args_entries(source)
        if not TYPED_ENTRY.match(text)
    ]


def test_args_entries_are_found():
    """The reader sees the entries of a known docstring (else the test below proves nothing)."""
    path = osp.join(REPO, 'mmcora', 'models', 'sam', 'sam_wrapper.py')
    with open(path, encoding='utf-8') as f:
        entries = [text for _, text in args_entries(f.read())]
    assert any(e.startswith('model_type (str): ') for e in entries)
    assert any(e.startswith('encoder_batch_size (int): ') for e in entries)
    # continuation lines and the Attributes section are not entries
    assert not any(e.startswith('pixel_mean') for e in entries)
    assert len(entries) >= 15


def test_untyped_entry_is_reported():
    source = ('def f(a, b, c, *args, **kwargs):\n'
              '    """Summary.\n\n'
              '    Args:\n'
              '        a (int): Typed.\n'
              '        b: Untyped,\n'
              '            continued: not an entry.\n'
              '        c (str):\n'
              '            Described on the next line.\n'
              '        *args (int): Typed.\n'
              '        **kwargs: Untyped.\n\n'
              '    Returns:\n'
              '        x: Not an argument.\n'
              '    """\n')
    entries = list(args_entries(source))
    assert [text.split(' ')[0] for _, text in entries] == ['a', 'b:', 'c', '*args', '**kwargs:']
    assert [lineno for lineno, text in entries if not TYPED_ENTRY.match(text)] == [6, 11]


def test_every_documented_argument_has_a_type():
    files = python_files()
    assert len(files) > 50
    offenders = [entry for path in files for entry in untyped_entries(path)]
    assert not offenders, (
        f'{len(offenders)} Args entries without a type; write them as '
        '``name (type): description`` (see mmcora/models/sam/sam_wrapper.py):\n' +
        '\n'.join(offenders))


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` from the repository root (where setup.cfg is)."""
    try:
        __import__(module)
    except ImportError:
        raise AssertionError(f'{module} is not installed: pip install -r requirements/tests.txt '
                             '(bash tools/setup_env.sh does)') from None
    return subprocess.run([sys.executable, '-m', module, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True)


def first_lines(text: str) -> str:
    lines = text.splitlines()
    more = f'\n... ({len(lines) - SHOWN_LINES} more lines)' if len(lines) > SHOWN_LINES else ''
    return '\n'.join(lines[:SHOWN_LINES]) + more


def test_code_is_formatted():
    fix = 'isort ' + ' '.join(FORMAT_SCOPE) + ' && yapf -r -i ' + ' '.join(FORMAT_SCOPE)
    isort = run_tool('isort', '--check-only', '--diff', *FORMAT_SCOPE)
    assert isort.returncode == 0, (f'imports are not sorted; run `{fix}`:\n'
                                   f'{first_lines(isort.stdout + isort.stderr)}')
    yapf = run_tool('yapf', '--diff', '--recursive', *FORMAT_SCOPE)
    assert yapf.returncode == 0 and not yapf.stdout.strip(), (
        f'the code is not formatted; run `{fix}`:\n{first_lines(yapf.stdout + yapf.stderr)}')


def test_flake8_clean():
    flake8 = run_tool('flake8', *FORMAT_SCOPE)
    assert flake8.returncode == 0, (f'flake8 reports problems:\n'
                                    f'{first_lines(flake8.stdout + flake8.stderr)}')
