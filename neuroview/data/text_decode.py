"""Text of a file of the user's, decoded: UTF-8, or UTF-16 / UTF-32 where a byte-order mark says so (Excel's
"Unicode Text"), other bytes refused naming the file and the line. Read by :mod:`.delimited`.

Imports nothing from neuroview.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["_text"]

#: Byte-order marks of text that is not UTF-8 (Excel's "Unicode Text" export is UTF-16 LE): the longer first.
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _text(path: Path) -> str:
    """The file's text: UTF-8 (a byte-order mark dropped), or UTF-16 / UTF-32 where a byte-order mark says so; other
    bytes are an error naming the file and the line."""
    raw = path.read_bytes()
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec)  # the codec reads the mark's byte order, and drops it
            except UnicodeDecodeError as e:
                raise ValueError(f"path: expected {codec.upper()} text (the byte-order mark {bom.hex(' ')} of {path.name} "
                                 f"says so), got bytes that do not decode as it at byte {e.start}; convert it "
                                 f"(iconv -f {codec} -t utf-8)") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"path: expected UTF-8 text, got byte 0x{raw[e.start]:02x} on line {line} of {path.name}, which "
                         "is not UTF-8 (a file saved as Latin-1 or Windows-1252, as Excel's plain 'CSV' is); save it as "
                         "'CSV UTF-8', or convert it (iconv -f latin1 -t utf-8)") from None
    if "\x00" in text:  # valid UTF-8, but no text file holds NUL: UTF-16 whose byte-order mark was lost, or binary
        line = text[:text.index("\x00")].count("\n") + 1
        raise ValueError(f"path: expected UTF-8 text, got NUL bytes on line {line} of {path.name}: UTF-16 without its "
                         "byte-order mark (convert it: iconv -f utf-16le -t utf-8), or not a text file")
    return text
