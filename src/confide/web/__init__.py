"""Confide's web app: the patient's choices journey, public transparency pages and the APIs.

``create_app(home)`` (in :mod:`confide.web.app`) builds the FastAPI application that
``confide serve`` runs.
"""
