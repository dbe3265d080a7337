r"""MkDocs hooks of the lossforge site (``hooks:`` in mkdocs.yml).

- ``on_config``: the "Losses" entry of the navigation gets one page per registered loss, by family.
- ``on_files``: those pages, the catalog page and the figures are generated in memory from the
  registry (nothing is written into ``docs/``); see :mod:`loss_pages` and :mod:`loss_figures`.
- ``on_page_content``: every formula (``\(...\)`` and ``\[...\]``, left as spans by
  ``pymdownx.arithmatex``) becomes MathML at build time with latex2mathml. Browsers render MathML
  natively, so formulas show without JavaScript, fonts from a CDN, or a network. A formula that
  does not convert is a warning, hence an error under ``mkdocs build --strict``.
"""

from __future__ import annotations

import html
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # mkdocs does this too while it loads the hook

import loss_figures as figures
import loss_pages as pages
from latex2mathml.converter import convert
from mkdocs.structure.files import File, Files

import lossforge as lf

log = logging.getLogger("mkdocs.plugins.lossforge")

_LOSSES_NAV = "Losses"


def _family_nav() -> list[Any]:
    by_family: dict[str, list[str]] = {}
    for name in lf.list_losses():
        by_family.setdefault(lf.get_loss(name).family, []).append(name)
    nav: list[Any] = ["losses/index.md"]
    for family, title in pages.FAMILY_TITLES.items():
        if family in by_family:
            nav.append({title: [f"losses/{n}.md" for n in sorted(by_family[family])]})
    return nav


def on_config(config: Any) -> Any:
    nav = config.get("nav") or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and _LOSSES_NAV in entry:
            nav[i] = {_LOSSES_NAV: _family_nav()}
    return config


def _figure_md(drawn: figures.Drawn) -> str:
    command = f" The same as <code>{html.escape(drawn.command)}</code> draws." if drawn.command else ""
    alt = f"{drawn.name}: loss and gradient against the {drawn.axis.split('  ')[0]}"
    return (f'<figure class="lf-plot" markdown>\n![{alt}](img/{drawn.name}.png){{ .lf-plot-img }}\n'
            f"<figcaption>{html.escape(drawn.caption)}{command}</figcaption>\n</figure>\n")


def on_files(files: Files, config: Any) -> Files:
    start = time.perf_counter()
    names = lf.list_losses()
    loss_pages: dict[str, pages.LossPage] = {}
    for drawn in figures.draw_all(names):
        if drawn.error:  # a scenario that does not fit a new loss: no figure, said in the log
            log.info(f"lossforge: no figure for {drawn.name}: {drawn.error}")
        figure_md = None
        if drawn.png is not None:
            files.append(File.generated(config, f"losses/img/{drawn.name}.png", content=drawn.png))
            figure_md = _figure_md(drawn)
        page = pages.loss_page(drawn.name, figure_md)
        loss_pages[drawn.name] = page
        files.append(File.generated(config, f"losses/{drawn.name}.md", content=page.markdown))
    files.append(File.generated(config, "losses/index.md", content=pages.family_index(loss_pages)))
    n_fig = sum(p.has_figure for p in loss_pages.values())
    log.info(f"lossforge: {len(loss_pages)} loss pages, {n_fig} with a figure, in {time.perf_counter() - start:.1f} s")
    return files


_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.DOTALL)


def _mathml(tex: str, display: str, where: str) -> str:
    try:
        return convert(html.unescape(tex).strip(), display=display)
    except Exception as exc:  # latex2mathml raises several exception types
        log.warning(f"{where}: the formula {tex.strip()!r} does not convert to MathML: {exc}")
        return f"<code>{tex}</code>"


def on_page_content(content: str, page: Any, config: Any, files: Any) -> str:
    where = page.file.src_uri
    content = _BLOCK.sub(lambda m: f'<div class="lf-math">{_mathml(m.group(1), "block", where)}</div>', content)
    return _INLINE.sub(lambda m: _mathml(m.group(1), "inline", where), content)
