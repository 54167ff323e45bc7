"""Download, verify and safely extract the real datasets (`distill data fetch NAME [ROOT]`)."""

from distill.data.fetch.fetch import RECORD, FetchResult, count_items, fetch_dataset, find_root
from distill.data.fetch.sources import MIRROR_ENV, SOURCES, Archive, Source

__all__ = [
    "MIRROR_ENV",
    "RECORD",
    "SOURCES",
    "Archive",
    "FetchResult",
    "Source",
    "count_items",
    "fetch_dataset",
    "find_root",
]
