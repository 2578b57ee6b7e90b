"""``alloop dashboard``: a local web page (a Bokeh server) that follows a campaign store while the campaign runs.

:mod:`~alloop.dashboard.data` reads what the page shows from a store (read-only, committed data only),
:mod:`~alloop.dashboard.budget` what is left of the campaign's limits, :mod:`~alloop.dashboard.figures` and
:mod:`~alloop.dashboard.page` draw it, :mod:`~alloop.dashboard.server` serves it and re-reads the store after
each new commit.
"""
