"""Sphinx configuration of the lenet_fast documentation.

Build: ``make -C docs html`` (or ``sphinx-build -W --keep-going -b html docs/source
docs/_build/html``), after ``pip install ".[docs]"``. Warnings are errors. The pages
hold no external fonts, scripts or images: they work offline.
"""

import shutil
import sys
from pathlib import Path

import lenet_fast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import apilist  # noqa: E402
import layers_svg  # noqa: E402

# Written at each build from the package as it is: the API reference's pages and the
# drawing of the layers (neither is committed).
shutil.rmtree(HERE / "api", ignore_errors=True)  # no page of a name that is gone
apilist.write_pages(HERE / "api")
layers_svg.write(HERE / "_static" / "layers.svg")

project = "lenet_fast"
author = "the lenet_fast developers"
copyright = "the lenet_fast developers"
release = version = lenet_fast.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_templates"]
templates_path = ["_templates"]
nitpicky = False

# The API reference: numpydoc renders the docstrings; every public name has its page.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc's checks of the public docstrings (the same set tests/test_docstrings.py
# runs): every parameter documented and no unknown ones, each with a type, a Returns
# section where something is returned, and a docstring on every public name.
numpydoc_validation_checks = {"GL08", "PR01", "PR02", "PR04", "PR10", "RT01"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.__repr__$"}

# No network at build time nor in the pages: no intersphinx inventories, no math
# rendering from a CDN (the formulas are plain text), no external fonts.
intersphinx_mapping = {}

html_theme = "pydata_sphinx_theme"
html_title = f"lenet_fast {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "icon_links": [],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
    "header_links_before_dropdown": 6,
}
html_context = {"default_mode": "light"}
html_sidebars = {"index": [], "getting-started": []}

myst_heading_anchors = 3


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document a class's own members, not those its base classes from other libraries
    give it (scikit-learn's metadata-routing ``set_*_request``, torch's Module API)."""
    target = getattr(obj, "fget", obj)
    module = getattr(target, "__module__", None) or ""
    if module.startswith(("sklearn", "torch")):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members, priority=100)
