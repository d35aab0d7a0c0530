"""Helpers every layer shares, one implementation each: atomic file writes
(:mod:`.atomic`), base64 (:mod:`.b64`), RFC 3339 UTC time (:mod:`.times`),
the lone-surrogate check of text (:mod:`.text`), and gunicorn through a
stall of the whole server (:mod:`.gunicorn_stalls`).
Nothing here imports the rest of labelcheck."""
