"""A small, safe text format for the legal texts an admin publishes: every character is escaped, and only these
constructs become HTML:

    ## Heading          (### for a sub-heading)
    - list item         (consecutive lines)
    [text](https://…)   links to http(s), mailto: or a path of this site
    blank lines         separate paragraphs

Raw HTML typed into a text shows as text; nothing from the database reaches a page unescaped.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

LINK = re.compile(r"\[([^\[\]\n]{1,300})\]\(([^()\s]{1,500})\)")
SAFE_TARGET = re.compile(r"^(?:https?://[^\s\"'<>]+|mailto:[^\s\"'<>]+|/(?!/)[^\s\"'<>\\]*)$")


def _inline(text: str) -> str:
    parts: list[str] = []
    position = 0
    for match in LINK.finditer(text):
        label, target = match[1], match[2]
        if not SAFE_TARGET.match(target):
            continue  # left as typed, escaped
        parts.append(str(escape(text[position:match.start()])))
        parts.append(f'<a href="{escape(target)}">{escape(label)}</a>')
        position = match.end()
    parts.append(str(escape(text[position:])))
    return "".join(parts)


def render(source: str) -> Markup:
    """The text as HTML; headings start at h2 (the page's title is its h1)."""
    html: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []

    def close() -> None:
        if paragraph:
            html.append(f"<p>{' '.join(_inline(line) for line in paragraph)}</p>")
            paragraph.clear()
        if items:
            html.append('<ul>' + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
            items.clear()

    for raw in source.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            close()
        elif line.startswith("### "):
            close()
            html.append(f'<h3 class="heading-s">{_inline(line[4:].strip())}</h3>')
        elif line.startswith("## "):
            close()
            html.append(f'<h2 class="heading-m">{_inline(line[3:].strip())}</h2>')
        elif line.startswith("- "):
            if paragraph:
                close()
            items.append(line[2:].strip())
        else:
            if items:
                close()
            paragraph.append(line)
    close()
    return Markup("\n".join(html))  # noqa: S704 (every piece above went through escape())


def outline(source: str) -> list[str]:
    """The texts of the level-2 headings, in order (a table of contents, and what tests look for)."""
    return [line.strip()[3:].strip() for line in source.splitlines() if line.strip().startswith("## ")]
