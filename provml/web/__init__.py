"""Flask support the three services share: the app factory and its JSON errors
(:mod:`.app`), access tokens and scopes (:mod:`.auth`), the audit log (:mod:`.audit`)
and the HTTP server's guard against slow or oversized requests (:mod:`.guard`).

This layer imports only :mod:`provml.core`: it knows no service's routes.
"""
