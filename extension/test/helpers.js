/* Envelopes for tests: the DSSE shape with a base64 JSON payload. The
 * signature is never checked by the extension (the server does that). */
"use strict";

function envelope(payload, sig = "c2ln") {
  return {
    payloadType: "application/vnd.labelcheck.claim+json",
    payload: Buffer.from(JSON.stringify(payload)).toString("base64"),
    signatures: [{ keyid: "acme+01020304", sig }],
  };
}

function claimFor(url, extra = {}) {
  return envelope(Object.assign({ v: 1, content: { sha256: "ab".repeat(32), media_type: "image/png", url } }, extra));
}

/** base64url of the envelope JSON, without padding (what publishers write). */
function attrValue(env, { padded = false } = {}) {
  const b64 = Buffer.from(JSON.stringify(env)).toString("base64");
  const url = b64.replace(/\+/g, "-").replace(/\//g, "_");
  return padded ? url : url.replace(/=+$/, "");
}

module.exports = { envelope, claimFor, attrValue };
