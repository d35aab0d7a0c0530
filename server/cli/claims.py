"""``labelcheck keygen | sign | check``: producer keys and label claims offline.

Exit codes: 0 success (for ``check``: the claim is verified), 1 a claim that
is not verified, 2 bad input (missing files, bad keys, bad trust file, bad
options). Errors are one clear line, never a traceback.
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
import re
from datetime import timedelta
from pathlib import Path

import click

from labelcheck import claims
from labelcheck.claims import ClaimError
from labelcheck.claims import pdq as pdqlib
from labelcheck.claims.trust import TrustError, TrustRegistry
from labelcheck.ledger import keyfile as keys
from labelcheck.util.times import parse_time
from labelcheck.cli.common import CliError
from labelcheck.cli.publish import publish_claims

MAX_CLAIM_FILE_BYTES = 4 * claims.MAX_ENVELOPE_BYTES
_DATA_ATTR = re.compile(r"""data-labelcheck-claim\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_CATEGORY_WORDS = {
    "confirmed": "AI-generated",
    "possible": "possibly AI-generated",
    "suspected": "suspected AI-generated",
}
# Magic numbers for files whose name does not say what they are.
_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"%PDF-", "application/pdf"),
)


def _open_error(path: Path, exc: OSError, what: str) -> CliError:
    if isinstance(exc, FileNotFoundError):
        return CliError(f"{what} {path} does not exist")
    if isinstance(exc, IsADirectoryError):
        return CliError(f"{what} {path} is a directory")
    return CliError(f"cannot read {what} {path}: {exc.strerror or exc}")


def hash_file(path: Path, what: str = "media file") -> str:
    """SHA-256 hex of a file, read in chunks."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise _open_error(path, exc, what) from None


def guess_media_type(path: Path) -> str:
    """From the file name, else from the first bytes, else application/octet-stream."""
    guessed, _ = mimetypes.guess_type(path.name, strict=False)
    if guessed:
        return guessed
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    for magic, media_type in _SNIFF:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def _load_signer(path: Path):
    try:
        return keys.load_signer(path)
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None


# --- keygen ------------------------------------------------------------------------


@click.command()
@click.argument("name")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Directory for NAME.key and NAME.pub.")
def keygen(name: str, out_dir: Path) -> None:
    """Create an Ed25519 key pair NAME.key (mode 0600) and NAME.pub.

    The files hold C2SP signed-note keys, the format of Go's sumdb/note.
    A NAME like example.com/acme writes OUT/example.com/acme.key; files
    never land outside --out. Give NAME.pub (the verifier key) to the
    operators of a labelcheck server; keep NAME.key secret.
    """
    try:
        signer = keys.generate_key(name)
        key_path, pub_path = keys.write_key_pair(signer, out_dir)
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"wrote {key_path} (private signer key, mode 0600)")
    click.echo(f"wrote {pub_path}")
    click.echo(f"key id: {signer.key_id}")
    click.echo(f"verifier key: {signer.vkey}")


# --- sign ----------------------------------------------------------------------------


@click.command()
@click.argument("media", type=click.Path(path_type=Path))
@click.option("--key", "key_file", required=True, type=click.Path(path_type=Path),
              help="The producer's signer key file (NAME.key).")
@click.option("--label", required=True, type=click.Choice(["1", "2", "3"]),
              help="GB 45438 Label: 1 AI-generated, 2 possibly, 3 suspected.")
@click.option("--synthesis", multiple=True, type=click.Choice(claims.SYNTHESIS_KINDS),
              help="A kind of synthesis (repeatable); face and voice need --consent-record.")
@click.option("--consent-record", type=click.Path(path_type=Path),
              help="The consent record file; only its SHA-256 goes into the claim.")
@click.option("--assessment-ref", help="Reference of the safety-assessment record.")
@click.option("--assessment-record", type=click.Path(path_type=Path),
              help="The safety-assessment record file; only its SHA-256 goes into the claim.")
@click.option("--filing", help="The producer's algorithm filing number.")
@click.option("--url", help="Where the publisher serves the media (content.url).")
@click.option("--media-type", help="Media type; guessed from the file when omitted.")
@click.option("--producer-code", help="GB 45438 ContentProducer (default: the key name).")
@click.option("--produce-id", help="GB 45438 ProduceID (default: the claim id).")
@click.option("--expires-in", type=click.IntRange(min=1), metavar="DAYS",
              help="Days until the claim expires (default: never).")
@click.option("--countersign", multiple=True, type=click.Path(path_type=Path), metavar="KEYFILE",
              help="A propagator's signer key file that countersigns (repeatable).")
@click.option("--html", "as_html", is_flag=True,
              help="Print an HTML element carrying the claim instead of the envelope JSON.")
@click.option("--publish", "publish_url", metavar="BASE_URL",
              help="Also register the claim with the server at BASE_URL (POST BASE_URL/v1/claims).")
@click.option("--no-pdq", is_flag=True, help="Leave out the PDQ perceptual hash of an image.")
def sign(media: Path, key_file: Path, label: str, synthesis: tuple[str, ...], consent_record: Path | None,
         assessment_ref: str | None, assessment_record: Path | None, filing: str | None, url: str | None,
         media_type: str | None, producer_code: str | None, produce_id: str | None, expires_in: int | None,
         countersign: tuple[Path, ...], as_html: bool, publish_url: str | None, no_pdq: bool) -> None:
    """Sign a label claim for the exact bytes of MEDIA and print it.

    Prints the DSSE envelope as JSON, or with --html an element with a
    data-labelcheck-claim attribute, ready to paste into a page. Consent and
    assessment records are referenced by SHA-256 only: no personal data
    goes into the claim. For an image, the claim carries its PDQ perceptual
    hash (content.pdq), so a server can still recognise it re-encoded or
    resized. With --publish, the claim is also registered with that server.
    """
    signer = _load_signer(key_file)
    others = [_load_signer(p) for p in countersign]
    if assessment_record and not assessment_ref:
        raise CliError("--assessment-record needs --assessment-ref")
    content_sha256 = hash_file(media)
    consent = hash_file(consent_record, "consent record") if consent_record else None
    assessment = None
    if assessment_ref:
        assessment = {"ref": assessment_ref}
        if assessment_record:
            assessment["sha256"] = hash_file(assessment_record, "assessment record")
    media_type = media_type or guess_media_type(media)
    pdq = None if no_pdq else image_pdq(media, media_type)
    try:
        body = claims.build_payload(
            content_sha256, media_type, label, issuer=signer, pdq=pdq,
            synthesis=list(synthesis) or None, consent=consent, assessment=assessment, filing=filing,
            url=url, producer_code=producer_code, produce_id=produce_id,
            expires_at=timedelta(days=expires_in) if expires_in else None,
        )
        envelope = claims.sign_envelope(body, signer, *others)
    except ClaimError as exc:
        hint = " (add --consent-record FILE)" if exc.code == "consent_missing" else ""
        raise CliError(f"{exc.message}{hint}") from None
    if publish_url:
        [answer] = publish_claims(publish_url, [envelope])
        click.echo(f"published {answer['claim_id']} (ledger entry {answer['receipt']['index']})", err=True)
    if as_html:
        click.echo(html_snippet(envelope, url or media.name, body["content"]["media_type"]))
    else:
        click.echo(json.dumps(envelope, indent=2))


def image_pdq(media: Path, media_type: str) -> tuple[str, int] | None:
    """The PDQ hash and quality of an image file, else None (said on stderr
    when an image gets none)."""
    if not media_type.startswith("image/"):
        return None
    if not pdqlib.available():
        click.echo("note: no content.pdq: install the optional packages pdqhash and numpy", err=True)
        return None
    try:
        with open(media, "rb") as f:
            got = pdqlib.image_pdq(f)
    except OSError as exc:
        raise _open_error(media, exc, "media file") from None
    if got is None:
        click.echo(f"note: no content.pdq: {media} could not be decoded as an image", err=True)
    return got


def html_snippet(envelope: dict, src: str, media_type: str) -> str:
    """An element for the media with the claim in ``data-labelcheck-claim`` (docs/protocol.md §2)."""
    attr = html.escape(claims.to_data_attribute(envelope), quote=True)
    src = html.escape(src, quote=True)
    if media_type.startswith("video/"):
        return f'<video src="{src}" controls data-labelcheck-claim="{attr}"></video>'
    if media_type.startswith("audio/"):
        return f'<audio src="{src}" controls data-labelcheck-claim="{attr}"></audio>'
    return f'<img src="{src}" alt="" data-labelcheck-claim="{attr}">'


# --- check ------------------------------------------------------------------------------


def read_claim_file(path: Path) -> bytes:
    """The envelope JSON in ``path``: the JSON itself, an HTML snippet with a
    ``data-labelcheck-claim`` attribute, or that attribute's base64url value."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CLAIM_FILE_BYTES + 1)
    except OSError as exc:
        raise _open_error(path, exc, "claim file") from None
    text = raw.strip()
    if len(raw) > MAX_CLAIM_FILE_BYTES or text.startswith(b"{"):
        return raw  # verification reports it as oversized or judges the JSON
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"claim file {path} is neither JSON nor text holding a claim") from None
    match = _DATA_ATTR.search(decoded)
    value = html.unescape(match.group(1) or match.group(2) or "") if match else decoded
    try:
        return claims.from_data_attribute(value)
    except ClaimError:
        raise CliError(
            f"claim file {path} holds no claim: expected envelope JSON or a data-labelcheck-claim attribute"
        ) from None


@click.command()
@click.argument("media", type=click.Path(path_type=Path))
@click.option("--claim", "claim_file", required=True, type=click.Path(path_type=Path),
              help="The claim: envelope JSON, or HTML with a data-labelcheck-claim attribute.")
@click.option("--trust", "trust_file", required=True, type=click.Path(path_type=Path),
              help="The trust registry (trust.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.option("--at", "at_time", metavar="TIME", help="Verify as of this RFC 3339 UTC time (default: now).")
def check(media: Path, claim_file: Path, trust_file: Path, as_json: bool, at_time: str | None) -> None:
    """Verify a label claim for MEDIA offline, against a trust registry.

    Exit status 0 only when the claim is verified: a registered, unrevoked
    producer signed it and it is for exactly these bytes; 1 otherwise.
    """
    try:
        registry = TrustRegistry.load(trust_file)
    except TrustError as exc:
        raise CliError(str(exc)) from None
    now = None
    if at_time:
        try:
            now = parse_time(at_time, utc_only=True)
        except ValueError as exc:
            raise CliError(f"--at: {exc}") from None
    data = read_claim_file(claim_file)
    content_sha256 = hash_file(media)
    verdict = claims.verify_claim(data, registry, content_sha256=content_sha256, now=now)
    if as_json:
        click.echo(json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(describe_verdict(verdict))
    click.get_current_context().exit(0 if verdict.verified else 1)


def describe_verdict(verdict) -> str:
    """A few lines a person can read: the outcome, who, what, and why."""
    head = verdict.status.upper()
    if verdict.category:
        says = "" if verdict.verified else "the claim says "
        head += f": {says}{_CATEGORY_WORDS[verdict.category]} (Label {verdict.label['Label']})"
    lines = [head]
    if verdict.producer:
        p = verdict.producer
        filing = f", filing {p['filing']}" if p.get("filing") else ""
        lines.append(f"  producer  {p['name']} ({p['key_id']}{filing})")
    elif verdict.key_id:
        lines.append(f"  issuer    {verdict.key_id} (not registered)")
    if verdict.claim_id:
        lines.append(f"  claim     {verdict.claim_id}")
    if verdict.content_sha256:
        lines.append(f"  content   {verdict.media_type or '?'} sha256 {verdict.content_sha256}")
    if verdict.countersigners:
        lines.append(f"  countersigned by {', '.join(verdict.countersigners)}")
    lines.append(f"  checks    {', '.join(verdict.reasons)}")
    lines.extend(f"  - {m}" for m in verdict.messages)
    return "\n".join(lines)


commands = [keygen, sign, check]
