"""The HTML report of a model.

The module's documentation is that of the code it hands on (below).
"""

from ._figures import report as _home
from ._figures.report import (  # noqa: F401
    PAPER_RESULTS, img_tag, html_table, html_page, build_html,
)

__doc__ = _home.__doc__
__all__ = [
    "PAPER_RESULTS", "img_tag", "html_table", "html_page", "build_html",
]
