"""Low-level helpers shared by every fastreid layer.

Submodules (``comm``, ``logger``, ``events``, ``file_io``, ``checkpoint``, ``env``,
``registry``) are imported explicitly by their users; this package imports
nothing so that ``import fastreid.utils`` stays cheap.
"""
