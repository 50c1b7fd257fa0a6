"""Parse: normalised lines → one report's structure (title, dates, sections, the three tables, statements).

`report.parse` drives it; `stream` lays the document out as one string of cells, `tables` reads the
three tables from it by the template layouts, and `digits` splits run-together numbers.
"""
