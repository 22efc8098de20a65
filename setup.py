"""Build netready with its required Cython kernel.

The compiled extension is mandatory: there is no pure-Python fallback at run
time, so a failed compile fails the build instead of silently slowing down.
"""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

extensions = [
    Extension(
        "pipeline._kernel",
        sources=["ext/_kernel.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
        language="c++",
    ),
]

setup(
    name="netready",
    version="0.1.0",
    description="Streaming telemetry pipeline tracking 1 ms metro computing coverage",
    python_requires=">=3.11",
    packages=find_packages(include=["pipeline", "pipeline.*"]),
    package_data={"pipeline": ["py.typed", "*.pyi"]},
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
    ),
    install_requires=[
        "numpy>=1.26",
        "pyarrow>=14",
        "orjson>=3.9",
        "fastavro>=1.9",
        "chdb>=3.0",
        "clickhouse-driver>=0.2.9",
        "confluent-kafka>=2.3",
        "faust-streaming>=0.15.3,<0.16",  # pipeline/alerts/faust_recovery.py mirrors 0.15.3
        "cramjam>=2.8",  # lets faust (aiokafka) read the lz4/zstd/snappy batches our producers send
        "cython>=3.0",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "click>=8.1",
        "jsonschema>=4.20",
        "prometheus-client>=0.20",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.2", "hypothesis>=6.100", "pandas>=2.1", "polars>=1.0",
                 "pyyaml>=6", "atheris>=2.3"],
    },
    entry_points={"console_scripts": ["netready=pipeline.cli:run"]},
)
