"""Build script: installs the ``fastreid`` package and compiles its Cython ranking extension."""
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = Path(__file__).resolve().parent


def read_requirements() -> list:
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def read_version() -> str:
    for line in (HERE / "fastreid" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip('"')
    raise RuntimeError("fastreid/__init__.py defines no __version__")


extensions = [
    Extension(
        "fastreid.evaluation.rank_cylib.rank_cy",
        ["fastreid/evaluation/rank_cylib/rank_cy.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    name="fastreid",
    version=read_version(),
    description="A PyTorch framework for person and vehicle re-identification",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["fastreid", "fastreid.*"]),
    package_data={"fastreid.evaluation.rank_cylib": ["*.pyx"]},
    install_requires=read_requirements(),
    extras_require={
        "test": ["pytest>=7.0", "h5py>=3.0"],
        "gpu": ["faiss-gpu"],
        "cuhk03": ["h5py>=3.0"],  # reads CUHK03's cuhk-03.mat (MATLAB v7.3)
        "deploy": ["onnx>=1.14", "onnxruntime>=1.16"],
    },
    ext_modules=cythonize(extensions, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}),
    zip_safe=False,
)
