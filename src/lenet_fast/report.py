# lenet_fast.report, public: the HTML report of a model. Its text is that of the module
# that holds the code, handed on with its names.
from ._figures.report import (  # noqa: F401
    __doc__, PAPER_RESULTS, img_tag, html_table, html_page, build_html,
)

__all__ = [
    "PAPER_RESULTS", "img_tag", "html_table", "html_page", "build_html",
]
