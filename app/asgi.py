"""The ASGI entry point served by the Procfile's `web` process."""

from app.main import create_app

app = create_app()
