"""The documentation site: it builds with warnings as errors, every loss has a page, and a loss page
served on localhost renders its formula (MathML) and its plot in headless Chromium.

The site is built once per module with ``mkdocs build --strict`` into a temporary folder, or taken
from ``$LOSSFORGE_DOCS_SITE`` (``make test`` builds it first with ``make docs`` and points there).
The browser test needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and
selenium (the ``docs`` extra); it skips only when Chromium or its driver is missing. ``.ci/run`` sets
``LOSSFORGE_REQUIRE_BROWSER=1`` once they are installed, and then a missing piece fails instead of
skipping, so that run cannot pass without rendering the page.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import lossforge as lf

ROOT = Path(__file__).resolve().parents[1]
#: The page the browser opens; it must have a formula and a figure.
LOSS_PAGE = "focal"


def _unavailable(reason: str) -> None:
    """Skip, or fail where .ci/run installed the browser (``LOSSFORGE_REQUIRE_BROWSER=1``)."""
    if os.environ.get("LOSSFORGE_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (LOSSFORGE_REQUIRE_BROWSER is set: the browser was installed)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("LOSSFORGE_DOCS_SITE")
    if prebuilt:
        path = Path(prebuilt)
        assert (path / "index.html").is_file(), f"LOSSFORGE_DOCS_SITE={prebuilt} holds no built site"
        return path
    try:
        import latex2mathml  # noqa: F401
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError as exc:
        _unavailable(f"the docs extra is not installed ({exc.name}): pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out


def test_every_loss_has_a_page_with_mathml(site: Path) -> None:
    names = lf.list_losses()
    missing = [n for n in names if not (site / "losses" / n / "index.html").is_file()]
    assert not missing, f"no page for {missing}"
    figures = {p.stem for p in (site / "losses" / "img").glob("*.png")}
    assert len(figures) >= 0.75 * len(names), f"only {len(figures)} of {len(names)} loss pages have a figure"
    for name in names:
        text = (site / "losses" / name / "index.html").read_text(encoding="utf-8")
        assert "<math" in text, f"{name}: no MathML formula"
        assert 'class="arithmatex"' not in text and "\\(" not in text, f"{name}: TeX left unconverted"
        prose = re.sub(r"<(pre|code|math)\b.*?</\1>", "", text, flags=re.DOTALL)
        raw = re.findall(r"\\[A-Za-z]{2,}", prose)
        assert not raw, f"{name}: raw TeX outside formulas and code: {raw[:5]}"
        assert (name in figures) == (f"../img/{name}.png" in text), f"{name}: figure and page disagree"
    for page in ("index.html", "tutorial/index.html", "getting-started/index.html", "conventions/index.html",
                 "benchmarks/index.html", "losses/index.html"):
        assert (site / page).is_file(), page


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = next((b for b in (shutil.which(n) for n in ("chromium", "chromium-browser")) if b), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        _unavailable("headless Chromium is not available: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
    except ImportError:
        _unavailable("selenium is not installed: pip install -e '.[docs]'")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    # An explicit driver path: selenium never tries to download a driver or a browser.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


_PROBE = """
const formula = document.querySelector('.lf-formula math[display="block"]');
const img = document.querySelector('figure.lf-plot img');
const box = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
return {
  formula: formula && {ns: formula.namespaceURI, size: box(formula),
                       display: getComputedStyle(formula).display,
                       parts: formula.querySelectorAll('msub, msup, msubsup, mfrac').length,
                       text: document.querySelector('.lf-formula').innerText},
  img: img && {complete: img.complete, natural: [img.naturalWidth, img.naturalHeight], size: box(img),
               src: img.getAttribute('src')},
  body: document.body.innerText,
};
"""


def test_loss_page_renders_formula_and_plot(served: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{served}/losses/{LOSS_PAGE}/")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("const i = document.querySelector('figure.lf-plot img'); return i && i.complete"))
    got = browser.execute_script(_PROBE)
    browser.save_screenshot(str(tmp_path / f"{LOSS_PAGE}.png"))  # for a look when it fails
    assert LOSS_PAGE in browser.title
    formula = got["formula"]
    assert formula is not None, "no display formula on the page"
    assert formula["ns"] == "http://www.w3.org/1998/Math/MathML"
    assert "math" in formula["display"], f"Chromium does not lay the formula out as math: {formula['display']!r}"
    width, height = formula["size"]
    assert width > 100 and height > 15, f"the formula has no rendered size: {formula['size']}"
    assert formula["parts"] >= 3, "the formula has no sub- or superscripts: not rendered from TeX"
    for tex in ("\\gamma", "\\log", "\\operatorname", "\\(", "\\["):
        assert tex not in got["body"], f"raw TeX {tex!r} shows on the page"
    img = got["img"]
    assert img is not None, "no plot on the page"
    assert img["src"] == f"../img/{LOSS_PAGE}.png"
    assert img["complete"] and img["natural"][0] > 300 and img["natural"][1] > 100, f"the plot did not load: {img}"
    assert img["size"][0] > 300, f"the plot is not displayed: {img}"


def test_catalog_links_to_the_page(served: str, browser: Any) -> None:
    browser.get(f"{served}/losses/")
    hrefs = browser.execute_script("return [...document.querySelectorAll('article a')].map(a => a.href)")
    assert f"{served}/losses/{LOSS_PAGE}/" in hrefs
