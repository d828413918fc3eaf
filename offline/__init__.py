"""Offline evaluation of the program: the mock-runtime harness, the render, the real helm."""

from config.files import PROJECT_DIR

__all__ = ["PROJECT_DIR"]
