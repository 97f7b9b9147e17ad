"""mmcora's packages form layers: a package imports only the packages below it (no cycles).

The rule is read from each module's import statements (relative ``from ..x`` and absolute
``mmcora.x``), module-level and inside functions alike, so a lazy import cannot hide a cycle.
"""
import ast
import glob
import os.path as osp

import pytest

from .conftest import REPO

PACKAGE = osp.join(REPO, 'mmcora')
# package -> the mmcora packages it may import (besides itself)
ALLOWED = {
    'utils': set(),
    'structures': {'utils'},
    'instructions': {'utils'},
    'datasets': {'utils', 'structures', 'instructions'},
}


def imported_packages(path: str) -> set:
    """The first-level mmcora packages a module imports."""
    parts = osp.relpath(path, PACKAGE).split(osp.sep)
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), path)):
        if isinstance(node, ast.ImportFrom) and node.level:
            # from .x / ..x / ...x: resolve against the module's folder
            base = parts[:len(parts) - node.level]
            target = base + (node.module.split('.') if node.module else [])
            names = target or [alias.name for alias in node.names]
            if names:
                found.add(names[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('mmcora.'):
            found.add(node.module.split('.')[1])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split('.')[1] for alias in node.names
                if alias.name.startswith('mmcora.'))
    return found


@pytest.mark.parametrize('package', sorted(ALLOWED))
def test_package_imports_only_lower_layers(package):
    offenders = []
    for path in sorted(glob.glob(osp.join(PACKAGE, package, '**', '*.py'), recursive=True)):
        extra = imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            offenders.append(f'{osp.relpath(path, REPO)} imports {sorted(extra)}')
    assert not offenders, '\n'.join(offenders)


def test_the_rule_sees_relative_and_absolute_imports(tmp_path, monkeypatch):
    module = osp.join(PACKAGE, 'instructions', 'builder.py')  # a real path for the levels
    source = ('from ..datasets.pannuke import X\nfrom . import engine\n'
              'def f():\n    import mmcora.models.sam\n    from mmcora.apis import Y\n')
    monkeypatch.setattr('builtins.open', lambda *a, **k: __import__('io').StringIO(source))
    assert imported_packages(module) == {'datasets', 'instructions', 'models', 'apis'}
