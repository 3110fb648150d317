"""Reports: results document(s) -> one self-contained HTML file, or a Markdown summary.

Reads the results document of `audit run` and imports nothing else of robustaudit.
"""
