"""After-action reports of exercises: figures computed from stored history and the audit log, rendered as HTML.

``marks`` reads what a stored event says about the exercise, ``compute`` folds a stream of rows and
audit entries into a :class:`~rallypoint.aar.model.Report`, ``svg`` and ``html`` render it, ``load``
reads the stores, ``pdf`` prints the HTML. The definitions of every figure are in docs/exercises.md
("After-action report").
"""
