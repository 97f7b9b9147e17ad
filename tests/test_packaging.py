"""mmcora as an installed OpenMMLab package: .mim, mim, external configs, wheel, README/CI."""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import mmcora
from .conftest import REPO, run_tool


def test_editable_install_exposes_mim_files():
    mim = osp.join(osp.dirname(mmcora.__file__), '.mim')
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.exists(osp.join(mim, name)), name
        assert osp.realpath(osp.join(mim, name)) == osp.join(REPO, name)
    assert osp.isfile(osp.join(mim, 'tools', 'train.py'))


def test_model_index_lists_every_config_once():
    """mim's model index: every folder's metafile is imported, names every config of its
    folder (not _base_) once, and names only configs that exist."""
    import glob

    import yaml
    with open(osp.join(REPO, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    folders = sorted(d for d in os.listdir(osp.join(REPO, 'configs')) if d != '_base_')
    assert sorted(osp.basename(osp.dirname(p)) for p in imports) == folders
    for metafile in imports:
        with open(osp.join(REPO, metafile)) as f:
            models = yaml.safe_load(f)['Models']
        listed = [m['Config'] for m in models]
        assert len(listed) == len(set(listed)), metafile
        folder = osp.dirname(metafile)
        present = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, folder, '*.py')))
        assert sorted(listed) == present, (metafile, set(present) ^ set(listed))
        for model in models:
            assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]


def test_mim_finds_package_config_and_tools():
    from mim.utils import get_installed_path, is_installed
    assert is_installed('mmcora')
    root = get_installed_path('mmcora')
    assert osp.isfile(osp.join(root, '.mim', 'tools', 'train.py'))
    assert osp.isfile(osp.join(root, '.mim', 'configs', 'toy', 'fcn_r18-tiny_toy-city-1-30.py'))


def test_external_config_builds_registered_component(tmp_path, toy_city_root, toy_city_spec):
    # A fresh interpreter, so registration comes from custom_imports, not from this test.
    cfg = tmp_path / 'outside' / 'my_toy.py'
    cfg.parent.mkdir()
    cfg.write_text(
        "_base_ = ['mmseg::_base_/default_runtime.py']\n"
        "custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)\n"
        f"dataset = dict(type='ToyCityscapesDataset', data_root={toy_city_root!r},\n"
        f"               toy_city={toy_city_spec!r}, ann_file='splits/1_4/labeled.txt',\n"
        "               data_prefix=dict(img_path='leftImg8bit/train',\n"
        "                                seg_map_path='gtFine/train'))\n")
    script = ('import sys\n'
              'from mmengine.config import Config\n'
              'from mmengine.registry import init_default_scope\n'
              'cfg = Config.fromfile(sys.argv[1])\n'
              'init_default_scope(cfg.default_scope)\n'
              'from mmseg.registry import DATASETS\n'
              'dataset = DATASETS.build(cfg.dataset)\n'
              'print(type(dataset).__module__, type(dataset).__name__, len(dataset))\n')
    out = subprocess.run([sys.executable, '-c', script, str(cfg)],
                         cwd=str(tmp_path),
                         capture_output=True,
                         text=True,
                         check=True).stdout
    assert out.strip().endswith('mmcora.datasets.toy_city_dataset ToyCityscapesDataset 8')


def test_wheel_carries_mim_files_and_split_lists(tmp_path):
    # Build from a copy of the tracked files, as pip does from an sdist or a clone.
    src = tmp_path / 'src'
    tracked = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'],
                             cwd=REPO,
                             capture_output=True,
                             text=True,
                             check=True).stdout.split()
    for rel in tracked:
        if osp.isfile(osp.join(REPO, rel)):
            os.makedirs(src / osp.dirname(rel), exist_ok=True)
            shutil.copy2(osp.join(REPO, rel), src / rel)
    run_tool([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w',
        str(tmp_path / 'dist'),
        str(src)
    ])
    wheel = next((tmp_path / 'dist').glob('mmcora-*.whl'))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ('mmcora/.mim/model-index.yml', 'mmcora/.mim/tools/train.py',
                   'mmcora/.mim/tools/dist_train.sh',
                   'mmcora/.mim/configs/toy/fcn_r18-tiny_toy-city-1-30.py',
                   'mmcora/datasets/splits/cityscapes/1_30/labeled.txt',
                   'mmcora/datasets/splits/cityscapes/val.txt'):
        assert needed in names, needed
    assert not any('__pycache__' in n for n in names)


def _readme_block(title: str) -> str:
    text = open(osp.join(REPO, 'README.md'), encoding='utf-8').read()
    match = re.search(rf'<!-- {title} -->\s*```(?:bash|sh)?\n(.+?)\n```', text, re.S)
    assert match, f'README.md has no "<!-- {title} -->" command block'
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = _readme_block('test-command')
    ci = open(osp.join(REPO, '.ci', 'run'), encoding='utf-8').read().splitlines()
    assert command in [line.strip() for line in ci]
    assert _readme_block('main-command')


def test_mim_train_runs_the_package_tools(tmp_path, small_toy_config):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    work = tmp_path / 'work'
    out = run_tool([
        mim, 'train', 'mmcora', small_toy_config, '--work-dir',
        str(work), '--cfg-options', 'train_cfg.max_iters=2'
    ]).stdout
    assert osp.join('mmcora', '.mim', 'tools', 'train.py') in out
    assert (work / 'iter_2.pth').is_file()
