"""Offline evaluation of the program: the mock-runtime harness, the render, the real helm."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
