"""Helpers every layer shares, one implementation each: atomic file writes
(:mod:`.atomic`), base64 (:mod:`.b64`) and RFC 3339 UTC time (:mod:`.times`).
Nothing here imports the rest of labelcheck."""
