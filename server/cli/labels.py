"""``labelcheck embed`` and ``labelcheck labels``: write and read labels inside media."""

from __future__ import annotations

import json
import os
import sys

import click

from labelcheck.labels import LabelError, embed_label, read_labels
from labelcheck.labels.embed import SignedMedia
from labelcheck.util.atomic import atomic_writer


@click.command("embed")
@click.argument("media", type=click.Path(exists=True, dir_okay=False))
@click.option("--label", "label", required=True, type=click.Choice(["1", "2", "3"]), help='GB 45438 Label: "1" AI-generated, "2" possibly, "3" suspected.')
@click.option("--producer", required=True, help="ContentProducer: the producer's name or code.")
@click.option("--produce-id", required=True, help="ProduceID: the producer's id for this content.")
@click.option("--propagator", help="ContentPropagator: the propagating platform's name or code.")
@click.option("--propagate-id", help="PropagateID: the propagator's id for this content.")
@click.option("--reserved1", help="ReservedCode1, e.g. the signed claim's id (urn:uuid:…).")
@click.option("--reserved2", help="ReservedCode2.")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write here (default: replace MEDIA); keeps MEDIA's permissions.")
@click.option("--force", is_flag=True, help="Write even into a file with a C2PA manifest (the manifest will no longer validate).")
def embed(media, label, producer, produce_id, propagator, propagate_id, reserved1, reserved2, out, force):
    """Write a GB 45438 implicit label into MEDIA (JPEG, PNG, WebP, MP4/MOV, MP3, WAV).

    Lossless: only the metadata changes; pixels and samples stay byte-identical,
    and the file keeps exactly one label (an earlier one is replaced). Embed
    first, then sign the final bytes: a file that already carries a C2PA
    manifest is refused unless --force, since the label would invalidate it.
    """
    if bool(propagator) != bool(propagate_id):
        raise click.UsageError("--propagator and --propagate-id go together")
    aigc = {"Label": label, "ContentProducer": producer, "ProduceID": produce_id}
    for key, value in (("ReservedCode1", reserved1), ("ContentPropagator", propagator), ("PropagateID", propagate_id), ("ReservedCode2", reserved2)):
        if value:
            aigc[key] = value
    with open(media, "rb") as fh:
        data = fh.read()
    try:
        labelled = embed_label(data, aigc, force=force)
    except SignedMedia as exc:
        raise click.ClickException(f"{media}: {exc}; or pass --force to write it anyway") from None
    except LabelError as exc:
        raise click.ClickException(str(exc)) from None
    target = out or media
    try:
        with atomic_writer(target, mode=os.stat(media).st_mode & 0o7777) as fh:
            fh.write(labelled)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    click.echo(f"{target}: Label {label} written ({len(data)} -> {len(labelled)} bytes)", err=True)


@click.command("labels")
@click.argument("media", type=click.Path(exists=True, dir_okay=False))
@click.option("--c2pa-anchors", envvar="LABELCHECK_C2PA_ANCHORS", type=click.Path(exists=True, dir_okay=False), help="PEM file of trusted C2PA anchors.")
@click.option("--json", "as_json", is_flag=True, help="Print the signals as JSON.")
def labels_cmd(media, c2pa_anchors, as_json):
    """Print the labels found inside MEDIA: GB 45438, IPTC digital source type, C2PA.

    Exit status 0 when at least one label is found, 1 when none is.
    """
    with open(media, "rb") as fh:
        found = read_labels(fh, c2pa_anchors=c2pa_anchors)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in found], ensure_ascii=False, indent=2))
    elif not found:
        click.echo(f"{media}: no labels")
    for s in [] if as_json else found:
        click.echo(f"{s.source}: {s.status} category={s.category or '-'} reasons={','.join(s.reasons)}")
        if "aigc" in s.detail:
            click.echo(f"  AIGC {json.dumps(s.detail['aigc'], ensure_ascii=False)}")
        if "digital_source_type" in s.detail:
            click.echo(f"  digital source type {s.detail['digital_source_type']}")
        if "c2pa" in s.detail:
            c = s.detail["c2pa"]
            click.echo(f"  C2PA {c.get('validation_state')} signer={c.get('signer')} source type={c.get('digital_source_type')}")
            if c.get("failures"):
                click.echo(f"  failures {', '.join(c['failures'])}")
        if "error" in s.detail:
            click.echo(f"  error {s.detail['error']}")
    sys.exit(0 if found else 1)


commands = [embed, labels_cmd]
