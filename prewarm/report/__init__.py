"""`prewarm report`: one self-contained HTML page from the store (data.py reads, html.py draws)."""
