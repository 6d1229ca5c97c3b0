"""The HTTP entrypoint: the Litestar app (`app.create_app`) and its routes."""
