"""Reading SPARQL text without parsing it: the parts where words do not count."""

from __future__ import annotations

import re

#: strings, comments and IRIs, by the grammar's own terminals (IRIREF without its UCHAR:
#: expand escapes first where they matter). Text outside these is where keywords live.
OPAQUE = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n\r]|\\.)*"'
    r"|'(?:[^'\\\n\r]|\\.)*'"
    r"|#[^\n\r]*"
    r'|<[^<>"{}|^`\\\x00-\x20]*>',
    re.DOTALL,
)
