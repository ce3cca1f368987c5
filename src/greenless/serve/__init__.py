"""HTTP service (FastAPI + uvicorn, the ``serve`` extra): ``create_app(settings)`` and the web page in ``static/``."""
