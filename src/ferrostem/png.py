"""PNG files as the report carries figures: chunk-level reading and writing, without matplotlib.

plots.figure_uri writes each figure as a PNG with its SVG in a private chunk; the report rule
(report.embed_figures) splits that chunk out again. The report rule imports only this module, not the plotting
stack (matplotlib costs about a second to import in a job that draws nothing).
"""

from __future__ import annotations

import struct
import zlib

# Figures are rendered at twice the resolution they are shown at, for sharp high-density screens; the report
# shows every PNG at half its pixel width (report.embed_figures).
PIXEL_DENSITY = 2


# Every figure also travels as SVG, for journals and editing: gzipped inside its PNG in a private ancillary chunk
# (browsers and image tools skip such chunks), so that a figure stays one data URI in every section's JSON. The
# report moves it out into a download link beside the PNG (report.embed_figures).
SVG_CHUNK = b"svGz"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG file, in order."""
    if png[:8] != PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    chunks, position = [], 8
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        chunks.append((kind, png[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)) for kind, data in chunks
    )


def with_png_chunk(png: bytes, kind: bytes, data: bytes) -> bytes:
    """`png` with one more chunk, just before its IEND."""
    chunks = png_chunks(png)
    return png_from_chunks([*chunks[:-1], (kind, data), chunks[-1]])
