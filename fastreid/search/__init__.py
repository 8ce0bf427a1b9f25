"""Image search over a gallery of crops: a faiss index of embeddings and a static HTML report.

Used by ``tools/search.py``; see :class:`GalleryIndex` and :func:`write_search_report`.
"""
from .gallery_index import INDEX_KINDS, GalleryIndex
from .image_files import IMAGE_EXTENSIONS, list_images
from .report import write_search_report

__all__ = ["GalleryIndex", "IMAGE_EXTENSIONS", "INDEX_KINDS", "list_images", "write_search_report"]
