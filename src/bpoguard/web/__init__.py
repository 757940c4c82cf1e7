"""The web layer: REST API (OpenAPI), agent desktop, tokens and device credentials.

The app lives in :mod:`bpoguard.web.app` (``create_app``); it is not imported
here so that the store's migrations, which import :mod:`bpoguard.web._tables`,
do not load FastAPI.
"""
