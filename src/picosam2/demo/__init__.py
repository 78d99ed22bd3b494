"""The web demo: ``picosam2 demo`` serves a page where a click on a photo segments the object there.

:func:`picosam2.demo.app.create_app` builds the FastAPI app (import it from ``picosam2.demo.app``:
this package itself imports nothing heavy, so ``picosam2 --help`` stays fast without the demo extra).
"""
