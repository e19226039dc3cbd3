"""setuptools entry: only what setup.cfg cannot say (the cffi native build)."""

from setuptools import setup

setup(cffi_modules=["rasm/_native/build.py:ffibuilder"])
