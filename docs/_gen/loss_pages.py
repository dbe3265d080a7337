r"""One Markdown page per registered loss, written from its registry entry and its docstring.

The docstrings are Google style with reStructuredText inline markup (``code``, :math:`x`,
``.. math::`` blocks, :func:`name`); this module turns them into Markdown whose formulas are
``\(...\)`` / ``\[...\]`` spans for ``pymdownx.arithmatex``; :mod:`hooks` then turns those into
MathML at build time, so the site needs no JavaScript and no network to show a formula.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import lossforge as lf

__all__ = ["FAMILY_TITLES", "LossPage", "family_index", "inline", "loss_page", "parse_docstring"]

FAMILY_TITLES = {
    "regression": "Regression and robust", "classification": "Classification", "segmentation": "Segmentation",
    "metric": "Metric learning", "boxes": "Boxes", "image": "Image", "distribution": "Distributions",
    "ranking": "Ranking", "sequence": "Sequences and LLMs", "custom": "Custom",
}

SECTIONS = ("Args", "Shape", "Returns", "Raises", "Note", "References", "Examples")
_SECTION_RE = re.compile(rf"^({'|'.join(SECTIONS)}):\s*$")


def _function_pages() -> dict[str, str]:
    """Function name (``focal_loss``) -> registry name (``focal``), for links from :func: roles."""
    return {spec.function.__name__: name for name in lf.list_losses() if (spec := lf.get_loss(name))}


def _escape(text: str) -> str:
    """Markdown-escape plain text (no markup is meant in it)."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text)


def inline(text: str, links: dict[str, str] | None = None, prefix: str | None = None, *, table: bool = False) -> str:
    r"""reST inline markup -> Markdown: ``code``, :math:`x` (-> ``\(x\)``), :func:`f` (a link where f is a loss).

    Examples:
        >>> inline(r"A ``delta`` and :math:`\delta > 0`, see :func:`huber_loss`.", {"huber_loss": "huber"})
        'A `delta` and \\(\\delta > 0\\), see [`huber_loss`](huber.md).'
    """
    links = links or {}
    stash: list[str] = []

    def keep(s: str) -> str:
        stash.append(s)
        return f"\x00{len(stash) - 1}\x00"

    def math(m: re.Match[str]) -> str:
        tex = " ".join(m.group(1).split())
        if table:  # a | would end the table cell, math or not
            tex = re.sub(r"(?<!\\)\|", r"\\vert ", tex.replace("\\|", "\\Vert "))
        return keep(r"\(" + tex + r"\)")

    text = re.sub(r":math:`([^`]*)`", math, text)

    def role(m: re.Match[str]) -> str:
        target = m.group(2).lstrip("~")
        short = target.split(".")[-1]
        if short in links:
            return keep(f"[`{short}`]({prefix or ''}{links[short]}.md)")
        return keep(f"`{short if m.group(2).startswith('~') else target}`")

    text = re.sub(r":(func|class|mod|meth|attr|data):`([^`]*)`", role, text)
    text = re.sub(r"``(.+?)``", lambda m: keep(f"`` {m.group(1)} ``" if "`" in m.group(1) else f"`{m.group(1)}`"),
                  text, flags=re.DOTALL)
    text = re.sub(r"https?://[^\s<>()]+[^\s<>().,;:]", lambda m: keep(f"<{m.group(0)}>"), text)
    text = re.sub(r"(?<![\w*])\*(?=[\s,)])", r"\\*", text)  # a lone * (as in "(N, *)") is not emphasis
    text = text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")
    if prefix is not None:
        text = text.replace("See the conventions page", f"See the [conventions page]({prefix}../conventions.md)")
    return re.sub(r"\x00(\d+)\x00", lambda m: stash[int(m.group(1))], text)


def _blocks(lines: list[str], links: dict[str, str]) -> str:
    """Paragraphs, bullet lists and ``.. math::`` blocks of dedented lines -> Markdown."""
    out: list[str] = []
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(inline(" ".join(s.strip() for s in para), links, "") + "\n")
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.strip().startswith(".. math::"):
            flush()
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                body.append(lines[i])
                i += 1
            # reST: a blank line inside ``.. math::`` separates equations; each is one display block
            for tex in re.split(r"\n\s*\n", inspect.cleandoc("\n".join(body))):
                if tex.strip():
                    out.append("\\[\n" + tex.strip() + "\n\\]\n")
            continue
        if not line.strip():
            flush()
        elif line.lstrip().startswith("- ") and not line.startswith(" "):
            flush()
            item = [line.strip()[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                item.append(lines[i].strip())
                i += 1
            out.append("- " + inline(" ".join(item), links, ""))
            if i < len(lines) and not lines[i].lstrip().startswith("- "):
                out.append("")
            continue
        else:
            para.append(line)
        i += 1
    flush()
    return "\n".join(out).strip() + "\n"


def _items(lines: list[str], links: dict[str, str]) -> str:
    """``name: text`` items with indented continuations (Args, Raises) -> a bullet list."""
    items: list[tuple[str, list[str]]] = []
    for line in lines:
        m = re.match(r"^(\S[^:]*?):\s(.*)$|^(\S[^:]*?):$", line)
        if m and not line.startswith(" "):
            items.append(((m.group(1) or m.group(3)).strip(), [m.group(2) or ""]))
        elif items and line.strip():
            items[-1][1].append(line.strip())
    rendered = []
    for name, text in items:
        names = ", ".join(f"`{n.strip()}`" for n in name.split(","))
        rendered.append(f"- {names}: {inline(' '.join(text).strip(), links, '')}")
    return "\n".join(rendered) + "\n"


@dataclass
class Docstring:
    summary: str
    body: list[str]
    sections: dict[str, list[str]]


def parse_docstring(doc: str) -> Docstring:
    """Split a Google-style docstring into summary, body lines and dedented sections."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary = lines[0].strip() if lines else ""
    body: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = body
    for line in lines[1:]:
        m = _SECTION_RE.match(line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        current.append(line)
    for key, value in sections.items():
        sections[key] = inspect.cleandoc("\n".join(value)).splitlines()
    return Docstring(summary, body, sections)


def _signature(fn: object) -> str:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    bare = sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                       return_annotation=sig.empty)
    return f"{fn.__name__}{bare}"  # type: ignore[attr-defined]


@dataclass
class LossPage:
    name: str
    family: str
    markdown: str
    has_figure: bool


def loss_page(name: str, figure_md: str | None) -> LossPage:
    """The Markdown of one loss's page; ``figure_md`` is the figure block (``None``: no figure)."""
    spec = lf.get_loss(name)
    links = _function_pages()
    doc = parse_docstring(spec.function.__doc__ or "")
    sec = doc.sections
    fn = spec.function
    out = [f"# {name}\n", f"{inline(doc.summary, links)}\n"]
    rows = [
        ("family", f"[{FAMILY_TITLES.get(spec.family, spec.family)}](index.md#{spec.family})"),
        ("function", f"`lossforge.functional.{fn.__name__}`"),
        ("module", f"`lossforge.{spec.module.__name__}`" if spec.module is not None else "none"),
        ("in a spec", f'`lf.build("{name}")`'),
        ("input → target", f"{_escape(spec.input_kind)} → {_escape(spec.target_kind)}"),
        ("unit of the unreduced loss", _escape(spec.unit)),
    ]
    if spec.aliases:
        rows.append(("aliases", ", ".join(f"`{a}`" for a in spec.aliases)))
    rows.append(("reference", inline(spec.reference, links, table=True)))
    out.append('<div class="lf-facts" markdown>\n\n| | |\n|---|---|\n' + "\n".join(f"| {k} | {v} |" for k, v in rows)
               + "\n\n</div>\n")
    out.append("## Formula\n")
    out.append('<div class="lf-formula" markdown>\n\n' + _blocks(doc.body, links) + "\n</div>\n")
    if "Shape" in sec:
        out.append("## Shapes\n")
        out.append(_blocks(sec["Shape"], links))
    out.append("## Plot\n")
    out.append(figure_md if figure_md is not None else
               "No figure yet: the site's figure scenarios (docs/_gen/loss_figures.py) do not cover this loss.\n")
    out.append("## Signature\n")
    out.append(f"```python\n{_signature(fn)}\n```\n")
    if "Args" in sec:
        out.append("## Arguments\n")
        out.append(_items(sec["Args"], links))
    if "Returns" in sec:
        out.append("## Returns\n")
        out.append(_blocks(sec["Returns"], links))
    if "Raises" in sec:
        out.append("## Raises\n")
        out.append(_items(sec["Raises"], links))
    if "Note" in sec:
        out.append("## Notes\n")
        out.append(_blocks(sec["Note"], links))
    if "References" in sec:
        out.append("## Reference\n")
        out.append(_blocks(sec["References"], links))
    if "Examples" in sec:
        out.append("## Example\n")
        out.append("```pycon\n" + "\n".join(sec["Examples"]).rstrip() + "\n```\n")
    out.append("Check it: `lossforge check " + name + "`; its entry: `lossforge show " + name + "`.\n")
    return LossPage(name, spec.family, "\n".join(out), figure_md is not None)


def family_index(pages: dict[str, LossPage]) -> str:
    """The catalog page: one table per family."""
    links = _function_pages()
    out = ["# The losses\n",
           f"{len(pages)} losses, one page each, generated from the registry (`lossforge list` prints the same "
           "catalog). Each page has the formula, the shapes, the unit of the unreduced loss, the reference, "
           "a plot where a one-dimensional view means something, and an example. What every loss shares "
           "(`reduction=`, `sample_weight=`, `mask=`, no silent broadcasting) is on the "
           "[conventions](../conventions.md) page.\n"]
    by_family: dict[str, list[str]] = {}
    for name, page in pages.items():
        by_family.setdefault(page.family, []).append(name)
    for family in FAMILY_TITLES:
        names = by_family.get(family)
        if not names:
            continue
        out.append(f"## {FAMILY_TITLES[family]} {{#{family}}}\n")
        out.append("| loss | what it is | input → target | unit |\n|---|---|---|---|")
        for name in sorted(names):
            spec = lf.get_loss(name)
            out.append(f"| [`{name}`]({name}.md) | {inline(spec.summary, links, table=True)} | "
                       f"{_escape(spec.input_kind)} → {_escape(spec.target_kind)} | {_escape(spec.unit)} |")
        out.append("")
    return "\n".join(out)
