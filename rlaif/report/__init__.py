"""Report helpers shared by every area: self-contained HTML pages (`html`) and markdown tables (`markdown`).

Imports no backends, judges, training code or torch; plots use matplotlib's Agg canvas.
"""
