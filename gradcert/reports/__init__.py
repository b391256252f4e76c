"""Reports from certification results: Markdown, HTML with plots, comparisons.

Reports read a results document (``results.json``, as a dict) and nothing
else of gradcert, so they can be made anywhere from the file alone.
"""

from gradcert.reports.compare import Comparison, compare
from gradcert.reports.html import to_html
from gradcert.reports.markdown import to_markdown
from gradcert.reports.summary import Summary, summarize

__all__ = ["Comparison", "Summary", "compare", "summarize", "to_html", "to_markdown"]
