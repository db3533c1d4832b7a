"""Download one cohort's raw files (the layout harmonise.py reads) with the settings of config `download:`.

Every source goes through the same client (sources/http.py), from the source or from `mirror:`; the
verified files are kept in the store (`download.store`, laid out like the remote, so it can serve as a
mirror elsewhere) and linked into `{results}/raw/{cohort}/`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .sources import urls
from .sources.http import Client, RetryPolicy

log = logging.getLogger(__name__)

# the Snakefile's parse reads these (settings): the source modules (polars, pandas) are imported by the download
# itself, not here
DEFAULTS = {
    "store": "downloads",
    "gdc_api": urls.GDC_API,
    "xena_gdc_hub": urls.GDC_HUB,
    "xena_pancan_hub": urls.PANCAN_HUB,
    "geo_ftp": urls.GEO_FTP,
    "geo_download": urls.NCBI_GEO_DOWNLOAD,
    "geo_query": urls.GEO_QUERY,
    "gdc_page_size": 500,
    "gdc_batch_files": 50,
}


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """`download:` with defaults, plus the top-level `mirror:` (the schema fills the same defaults)."""
    return {**DEFAULTS, **dict(config.get("download") or {}), "mirror": config.get("mirror") or None}


def make_client(download: Mapping[str, Any], progress: bool = True, workers: int = 1) -> Client:
    """`workers`: threads that copy and checksum files from a local mirror (Client.workers)."""
    return Client(
        store=Path(download["store"]),
        mirror=download.get("mirror"),
        policy=RetryPolicy.from_config(download, ignore=[*DEFAULTS, "mirror"]),
        progress=progress,
        workers=workers,
    )


def download_cohort(
    cohort: Mapping[str, Any],
    download: Mapping[str, Any],
    raw_dir: str | os.PathLike[str],
    client: Client | None = None,
    workers: int = 1,
) -> Path:
    """The cohort's raw files, fetched by its source's adapter (harmonise.SOURCES); `workers`: see make_client."""
    from .harmonise import source_adapter

    return source_adapter(cohort).download(client or make_client(download, workers=workers), cohort, download, raw_dir)


def refetch_hint(raw_dir: str | os.PathLike[str], store: str | os.PathLike[str]) -> str:
    """What to run when a downloaded raw file fails to parse after the user repaired its source.

    The raw folder holds links to (or copies of) the store's files made when the cohort was downloaded; a file
    replaced since then in the mirror or in the store is not seen until the cohort is fetched again.
    """
    return (
        f"{raw_dir} holds the files download_cohort fetched earlier. If you have repaired this file in the "
        f"mirror or in the download store ({store}), fetch the cohort again: `rm -r {raw_dir}` (or add "
        f"`--forcerun download_cohort`) and rerun; a repair made in the mirror also needs the file's old copy "
        f"under {store} removed"
    )
