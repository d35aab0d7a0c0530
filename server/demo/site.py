"""Demo pages for the browser extension, served under ``/demo/`` when
``labelcheck serve --demo`` is on: media (:mod:`.media`, :mod:`.c2pa_signing`),
keys and registry entries (:mod:`.producers`), claims signed per host
(:mod:`.claims`) and the pages (:mod:`.pages`)."""

from __future__ import annotations

from flask import Flask

from labelcheck.demo.c2pa_signing import c2pa_image
from labelcheck.demo.claims import Demo
from labelcheck.demo.media import build_media, demo_jpeg
from labelcheck.demo.pages import EXTENSION_KEY, bp
from labelcheck.demo.producers import (REVOKED_PRODUCER, UNKNOWN_PRODUCER, demo_key, ensure_demo_producer,
                                       ensure_revoked_producer)
from labelcheck.pipeline.services import Services

__all__ = ["register", "ensure_demo_producer"]


def register(app: Flask, svc: Services) -> None:
    """Mount the demo under /demo/ (called by create_app when demo is on)."""
    config = svc.config
    producer = ensure_demo_producer(svc)
    unknown = demo_key(config, UNKNOWN_PRODUCER)
    revoked = demo_key(config, REVOKED_PRODUCER)
    ensure_revoked_producer(svc, revoked)
    media = dict(build_media())
    signed = c2pa_image(config, demo_jpeg())
    if signed is not None:
        media["c2pa.jpg"] = (signed, "image/jpeg")
    app.extensions[EXTENSION_KEY] = Demo(media, producer, unknown, revoked)
    app.register_blueprint(bp)
