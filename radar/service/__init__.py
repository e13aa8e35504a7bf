"""``radar serve``: the HTTP API, the action pull queue and the dashboard.

:func:`radar.service.app.create_app` is the entry point; importing this package opens nothing.
"""
