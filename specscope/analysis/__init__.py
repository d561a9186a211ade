"""Analysis: read a study folder, compute the study's metrics, draw its figures, write the report.

`loaders` reads the files (the only module that knows field names), `metrics` turns them into
tables, `figures` draws one matplotlib figure per function, `report` assembles `report.html`.
Nothing here imports torch: reports are made anywhere, from folders made elsewhere.
"""
