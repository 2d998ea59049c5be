"""The report document rendered as Markdown (no plots) and as one self-contained HTML page (plots embedded)."""

from __future__ import annotations

import base64
import html

from melancia.evaluation.document import (
    MISSING,
    Block,
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Quote,
    Table,
    build_document,
)
from melancia.evaluation.schema import Report


# ---------------------------------------------------------------- Markdown


def render_markdown(report: Report) -> str:
    """The report as Markdown (no plots: they live in the HTML)."""
    parts = [markdown_block(block) for block in build_document(report).blocks if not isinstance(block, Figure)]
    return "\n\n".join(parts) + "\n"


def markdown_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return f"**{block.text}**" if block.tone else block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        return markdown_table(block)
    if isinstance(block, Quote):
        lines = [f"*{block.label}:*", "", *(block.text or MISSING).splitlines()]
        return "\n".join(f"> {line}".rstrip() for line in lines)
    raise TypeError(f"no Markdown for {type(block).__name__}")


def markdown_table(table: Table) -> str:
    lines = [markdown_row(table.headers), "|" + "|".join("---" for _ in table.headers) + "|"]
    return "\n".join(lines + [markdown_row(row) for row in table.rows])


def markdown_row(cells: list[str]) -> str:
    """A table row; pipes and line breaks inside a cell would break the table, so they are neutralised."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


# ---------------------------------------------------------------- HTML

HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
blockquote { border-left: 4px solid #bbb; margin: 0.5em 0; padding: 0.3em 1em; background: #fafafa;
             white-space: pre-wrap; }
.label { font-style: italic; color: #555; }
.pass { color: #137333; font-weight: bold; font-size: 1.3em; }
.fail { color: #b3261e; font-weight: bold; font-size: 1.3em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; }
"""


def render_html(report: Report, plots: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page; ``plots`` maps figure keys to PNG bytes.

    The keys used are ``"categories"`` and ``"latency"``; a missing key simply leaves its figure out.
    Every piece of text from the report is escaped.
    """
    document = build_document(report)
    title = html.escape(document.blocks[0].text) if document.blocks else "Evaluation report"
    body = "\n".join(html_block(block, plots) for block in document.blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def html_block(block: Block, plots: dict[str, bytes]) -> str:
    esc = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}>{esc(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        css = f' class="{block.tone}"' if block.tone else ""
        return f"<p{css}>{esc(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return html_table(block)
    if isinstance(block, Quote):
        return f'<p class="label">{esc(block.label)}:</p>\n<blockquote>{esc(block.text or MISSING)}</blockquote>'
    if isinstance(block, Figure):
        return html_figure(block, plots.get(block.key))
    raise TypeError(f"no HTML for {type(block).__name__}")


def html_table(table: Table) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr>"
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table>\n<thead>{head}</thead>\n<tbody>{rows}</tbody>\n</table>"


def html_figure(figure: Figure, png: bytes | None) -> str:
    if not png:
        return ""
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    caption = html.escape(figure.caption)
    return f'<figure><img src="{source}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
