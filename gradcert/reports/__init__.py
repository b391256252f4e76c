"""Reports from certification (and check_grads) results: Markdown, HTML with plots,
JUnit XML, terminal tables, comparisons of engines.

Reports read :class:`gradcert.results.Results` (``Results.load``) and nothing
else of gradcert, so they can be made anywhere from a ``results.json`` alone.
"""

from gradcert.reports.compare import Comparison, compare
from gradcert.reports.html import to_html
from gradcert.reports.junit import to_junit
from gradcert.reports.markdown import to_markdown
from gradcert.reports.terminal import print_comparison, print_verdict, render_verdict

__all__ = ["Comparison", "compare", "print_comparison", "print_verdict", "render_verdict",
           "to_html", "to_junit", "to_markdown"]
