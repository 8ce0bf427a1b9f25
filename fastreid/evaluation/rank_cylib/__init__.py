"""Compiled (Cython) re-id ranking. Built by ``pip install``; see ``fastreid.evaluation.rank``."""
