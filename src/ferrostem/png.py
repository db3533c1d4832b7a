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


# zlib level of the figures' pixel data: with the Up filter below, level 6 gives files about a tenth smaller than
# matplotlib's PNGs (Pillow: RGBA, adaptive filters, level 6) in half the time (the demo's 145 figures).
PNG_COMPRESSION = 6


def encode_png(pixels, dpi: float | None = None, text: dict[str, str] | None = None) -> bytes:
    """A PNG (8 bits per channel) of an h x w x 4 uint8 RGBA array; RGB when every pixel is opaque (the same
    pixels: a reader gives alpha 255 to an RGB PNG). Every row uses PNG's "Up" filter (type 2, the difference to
    the row above; PNG specification, section 9.2), computed with numpy; `dpi` goes into pHYs, `text` into tEXt
    chunks (Latin-1 keywords and values).

    Matplotlib leaves figure encoding to Pillow, which tries every filter on every row: 40% of a figure's PNG time.
    """
    import numpy as np  # here, not at the top: the report rule imports this module without numpy

    height, width, channels = pixels.shape
    if channels != 4 or pixels.dtype != np.uint8:
        raise ValueError(f"expected an h x w x 4 uint8 RGBA array, got {pixels.shape} {pixels.dtype}")
    opaque = bool((pixels[..., 3] == 255).all())
    colour = pixels[..., :3] if opaque else pixels
    rows = colour.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # Up
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG's does
    filtered[0, 1:] = rows[0]
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2 if opaque else 6, 0, 0, 0))]
    if dpi:
        per_metre = round(dpi / 0.0254)
        chunks.append((b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    for keyword, value in (text or {}).items():
        chunks.append((b"tEXt", keyword.encode("latin-1") + b"\0" + value.encode("latin-1")))
    chunks += [(b"IDAT", zlib.compress(filtered, PNG_COMPRESSION)), (b"IEND", b"")]
    return png_from_chunks(chunks)
