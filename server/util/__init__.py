"""Helpers every layer shares, one implementation each: atomic file writes
(:mod:`.atomic`), base64 (:mod:`.b64`), RFC 3339 UTC time (:mod:`.times`)
and the lone-surrogate check of text (:mod:`.text`).
Nothing here imports the rest of labelcheck."""
