"""Packaging for mmcora (distribution name == import name, as mim requires)."""
import os
import os.path as osp
import shutil
from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

REPO = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(REPO, 'mmcora', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'mmcora/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>.txt`` without comments."""
    with open(osp.join(REPO, 'requirements', f'{name}.txt'), encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


class BuildPyWithMim(build_py):
    """build_py that also provides ``mmcora/.mim/{configs,tools,model-index.yml}``.

    mim and mmengine look for an OpenMMLab package's configs and tools there. A wheel (also
    the one pip builds for ``pip install .``) gets copies in its build directory; an editable
    install (PEP 660 ``editable_wheel``, which runs this command with ``editable_mode``) gets
    symlinks in the source tree, so edits to configs are seen at once.
    """

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            self._provide(osp.join(REPO, 'mmcora', '.mim'), link=True)
        else:
            self._provide(osp.join(self.build_lib, 'mmcora', '.mim'), link=False)

    @staticmethod
    def _provide(mim_path: str, link: bool) -> None:
        os.makedirs(mim_path, exist_ok=True)
        for name in MIM_FILES:
            src, dst = osp.join(REPO, name), osp.join(mim_path, name)
            if osp.islink(dst) or osp.isfile(dst):
                os.remove(dst)
            elif osp.isdir(dst):
                shutil.rmtree(dst)
            if link:
                os.symlink(osp.relpath(src, mim_path), dst)
            elif osp.isdir(src):
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copyfile(src, dst)


if __name__ == '__main__':
    setup(
        name='mmcora',
        version=read_version(),
        description='CORA reasoning segmentation with scarce pixel labels, as an '
        'OpenMMLab (mmsegmentation 1.x) extension',
        long_description=open(osp.join(REPO, 'README.md'), encoding='utf-8').read(),
        long_description_content_type='text/markdown',
        python_requires='>=3.10',
        packages=find_namespace_packages(include=['mmcora', 'mmcora.*']),
        include_package_data=True,
        install_requires=parse_requirements('runtime'),
        extras_require={
            'mim': parse_requirements('mminstall'),
            'tests': parse_requirements('tests'),
        },
        license='Apache License 2.0',
        cmdclass={'build_py': BuildPyWithMim},
        zip_safe=False,
    )
