"""Media fixtures written by the tests: images, audio, video and C2PA-signed files.

Everything is generated in memory, so no test depends on outside files:
Pillow for PNG/JPEG/WebP, the ``wave`` module for WAV, hand-written MPEG
audio frames for MP3 and hand-written ISO BMFF boxes for MP4, and a
throwaway certificate chain (``cryptography``) for C2PA signing.
"""

from __future__ import annotations

import datetime
import io
import json
import struct
import wave
from dataclasses import dataclass
from functools import lru_cache

LABEL = {"Label": "1", "ContentProducer": "001191110108MA01KP2T5U00000", "ProduceID": "gen-20250901-0001"}


def aigc_json(label: dict | None = None, wrap: bool = False) -> str:
    obj = dict(LABEL if label is None else label)
    return json.dumps({"AIGC": obj} if wrap else obj, separators=(",", ":"))


# --- images ------------------------------------------------------------------


def _image(width: int, height: int, mode: str = "RGB"):
    from PIL import Image

    im = Image.new(mode, (width, height))
    # A gradient, so decoded pixels differ from pixel to pixel.
    im.putdata([((x * 7) % 256, (y * 5) % 256, (x + y) % 256) + ((200,) if mode == "RGBA" else ()) for y in range(height) for x in range(width)])
    return im


def png(width: int = 32, height: int = 24, *, mode: str = "RGB", xmp: bytes | None = None, exif: bytes | None = None) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if xmp is not None:
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
    out = io.BytesIO()
    kwargs = {"pnginfo": info}
    if exif is not None:
        kwargs["exif"] = exif
    _image(width, height, mode).save(out, "PNG", **kwargs)
    return out.getvalue()


def jpeg(width: int = 32, height: int = 24, *, xmp: bytes | None = None, exif: bytes | None = None, quality: int = 90) -> bytes:
    out = io.BytesIO()
    kwargs = {"quality": quality}
    if xmp is not None:
        kwargs["xmp"] = xmp
    if exif is not None:
        kwargs["exif"] = exif
    _image(width, height).save(out, "JPEG", **kwargs)
    return out.getvalue()


def webp(width: int = 32, height: int = 24, *, lossless: bool = False, mode: str = "RGB", xmp: bytes | None = None, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    kwargs = {"lossless": lossless}
    if xmp is not None:
        kwargs["xmp"] = xmp
    if exif is not None:
        kwargs["exif"] = exif
    _image(width, height, mode).save(out, "WEBP", **kwargs)
    return out.getvalue()


def pixels(data: bytes) -> tuple:
    """Decoded pixels (mode, size, bytes) of an image."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.mode, im.size, im.tobytes()


def xmp_packet(*, aigc: str | None = None, dst: str | None = None, attribute: bool = False, extra: str = "") -> bytes:
    """An XMP packet with ``TC260:AIGC`` and/or ``Iptc4xmpExt:DigitalSourceType``."""
    from xml.sax.saxutils import escape, quoteattr

    attrs, elems = "", ""
    if aigc is not None:
        if attribute:
            attrs += f" TC260:AIGC={quoteattr(aigc)}"
        else:
            elems += f"<TC260:AIGC>{escape(aigc)}</TC260:AIGC>"
    if dst is not None:
        if attribute:
            attrs += f" Iptc4xmpExt:DigitalSourceType={quoteattr(dst)}"
        else:
            elems += f"<Iptc4xmpExt:DigitalSourceType>{escape(dst)}</Iptc4xmpExt:DigitalSourceType>"
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/"'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        f"{attrs}>{elems}<dc:format>image/jpeg</dc:format>{extra}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode("utf-8")


def exif_user_comment(text: str, byte_order: str = "<", prefix: bool = False, unicode: bool = False) -> bytes:
    """A minimal TIFF block: IFD0 -> Exif IFD -> UserComment (ASCII or UNICODE header)."""
    bo = byte_order
    if unicode:  # UCS-2 in the TIFF byte order (CIPA DC-008 §4.6.5)
        value = b"UNICODE\x00" + text.encode("utf-16-le" if bo == "<" else "utf-16-be")
    else:
        value = b"ASCII\x00\x00\x00" + text.encode("utf-8")
    header = (b"II*\x00" if bo == "<" else b"MM\x00*") + struct.pack(bo + "I", 8)
    ifd0 = struct.pack(bo + "H", 1) + struct.pack(bo + "HHII", 0x8769, 4, 1, 26) + struct.pack(bo + "I", 0)
    exif_ifd = struct.pack(bo + "H", 1) + struct.pack(bo + "HHII", 0x9286, 7, len(value), 44) + struct.pack(bo + "I", 0)
    blob = header + ifd0 + exif_ifd + value
    return (b"Exif\x00\x00" + blob) if prefix else blob


# --- audio -------------------------------------------------------------------


def wav(frames: int = 4410, *, rate: int = 44100, extra_chunks: list[tuple[bytes, bytes]] = ()) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", (i * 37) % 20000 - 10000) for i in range(frames)))
    data = out.getvalue()
    for fourcc, body in extra_chunks:
        data += fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(data) - 8) + data[8:]


def wav_samples(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.readframes(w.getnframes())


MP3_HEADER = bytes.fromhex("fffb9064")  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo
MP3_FRAME_LEN = 417  # 144 * 128000 / 44100, no padding


def mp3_frames(count: int = 20) -> bytes:
    """A run of valid (silent) MPEG-1 Layer III frames."""
    return b"".join(MP3_HEADER + bytes([(i * 13 + j) % 7 for j in range(MP3_FRAME_LEN - 4)]) for i in range(count))


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def id3_frame(fid: bytes, payload: bytes, major: int = 3) -> bytes:
    size = _syncsafe(len(payload)) if major == 4 else struct.pack(">I", len(payload))
    return fid + size + b"\x00\x00" + payload


def id3_tag(frames: list[bytes], major: int = 3, padding: int = 0) -> bytes:
    body = b"".join(frames) + b"\x00" * padding
    return b"ID3" + bytes([major, 0, 0]) + _syncsafe(len(body)) + body


def txxx(description: str, value: str, encoding: int = 3) -> bytes:
    codec = {0: "latin-1", 1: "utf-16", 3: "utf-8"}[encoding]
    term = b"\x00\x00" if encoding == 1 else b"\x00"
    return bytes([encoding]) + description.encode(codec) + term + value.encode(codec)


def mp3(count: int = 20, *, tag: bytes = b"") -> bytes:
    return tag + mp3_frames(count)


# --- video (ISO BMFF) ---------------------------------------------------------


def box(btype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload) + 8, btype) + payload


def full(btype: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return box(btype, struct.pack(">I", (version << 24) | flags) + payload)


@dataclass
class Mp4:
    data: bytes
    samples: list[bytes]


def _sample_bytes(i: int, size: int) -> bytes:
    return bytes((i * 31 + j * 7) % 256 for j in range(size))


def _moov(sample_sizes: list[int], offsets: list[int], udta: bytes = b"", co64: bool = False) -> bytes:
    n = len(sample_sizes)
    mvhd = full(b"mvhd", struct.pack(">IIII", 0, 0, 1000, n * 100) + struct.pack(">IH", 0x00010000, 0x0100) + b"\x00" * 10 + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000) + b"\x00" * 24 + struct.pack(">I", 2))
    tkhd = full(b"tkhd", struct.pack(">IIIII", 0, 0, 1, 0, n * 100) + b"\x00" * 8 + struct.pack(">HHHH", 0, 0, 0x0100, 0) + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000) + struct.pack(">II", 0, 0), flags=3)
    mdhd = full(b"mdhd", struct.pack(">IIII", 0, 0, 1000, n * 100) + struct.pack(">HH", 0x55C4, 0))
    hdlr = full(b"hdlr", struct.pack(">I4s", 0, b"soun") + b"\x00" * 12 + b"sound\x00")
    smhd = full(b"smhd", b"\x00" * 4)
    dref = full(b"dref", struct.pack(">I", 1) + full(b"url ", b"", flags=1))
    dinf = box(b"dinf", dref)
    entry = box(b"mp4a", b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 8 + struct.pack(">HHHHI", 1, 16, 0, 0, 1000 << 16))
    stsd = full(b"stsd", struct.pack(">I", 1) + entry)
    stts = full(b"stts", struct.pack(">III", 1, n, 100))
    stsc = full(b"stsc", struct.pack(">IIII", 1, 1, 1, 1))
    stsz = full(b"stsz", struct.pack(">II", 0, n) + b"".join(struct.pack(">I", s) for s in sample_sizes))
    if co64:
        stco = full(b"co64", struct.pack(">I", n) + b"".join(struct.pack(">Q", o) for o in offsets))
    else:
        stco = full(b"stco", struct.pack(">I", n) + b"".join(struct.pack(">I", o) for o in offsets))
    stbl = box(b"stbl", stsd + stts + stsc + stsz + stco)
    minf = box(b"minf", smhd + dinf + stbl)
    mdia = box(b"mdia", mdhd + hdlr + minf)
    trak = box(b"trak", tkhd + mdia)
    return box(b"moov", mvhd + trak + udta)


def ilst_tool_udta(tool: str = "Lavf60.3.100") -> bytes:
    """A ``udta`` with iTunes metadata as ffmpeg writes it (``©too``)."""
    hdlr = full(b"hdlr", b"\x00" * 4 + b"mdir" + b"appl" + b"\x00" * 8 + b"\x00")
    item = box(b"\xa9too", box(b"data", struct.pack(">II", 1, 0) + tool.encode()))
    return box(b"udta", full(b"meta", hdlr + box(b"ilst", item)))


def mp4(samples: int = 8, sample_size: int = 300, *, moov_first: bool = True, udta: bytes = b"", mdat_padding: int = 0, co64: bool = False) -> Mp4:
    """A minimal MP4: ftyp, moov (one audio track, stco or co64 offsets), mdat."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    sample_data = [_sample_bytes(i, sample_size) for i in range(samples)]
    sizes = [len(s) for s in sample_data]
    mdat_payload = b"".join(sample_data) + b"\x00" * mdat_padding
    mdat = box(b"mdat", mdat_payload)
    if moov_first:
        moov_len = len(_moov(sizes, [0] * samples, udta, co64))
        first = len(ftyp) + moov_len + 8
        offsets = [first + i * sample_size for i in range(samples)]
        data = ftyp + _moov(sizes, offsets, udta, co64) + mdat
    else:
        first = len(ftyp) + 8
        offsets = [first + i * sample_size for i in range(samples)]
        data = ftyp + mdat + _moov(sizes, offsets, udta, co64)
    return Mp4(data, sample_data)


def mp4_samples(data: bytes) -> list[bytes]:
    """The samples an MP4 player would read: via stco offsets and stsz sizes."""

    def kids(buf, start, end):
        pos = start
        while pos + 8 <= end:
            size, t = struct.unpack_from(">I4s", buf, pos)
            yield t, pos + 8, pos + size
            pos += size

    def find(buf, start, end, path):
        for t, s, e in kids(buf, start, end):
            if t == path[0]:
                return (s, e) if len(path) == 1 else find(buf, s, e, path[1:])
        raise KeyError(path)

    s, e = find(data, 0, len(data), [b"moov", b"trak", b"mdia", b"minf", b"stbl"])
    zs, _ = find(data, s, e, [b"stsz"])
    (_, n) = struct.unpack_from(">II", data, zs + 4)
    sizes = struct.unpack_from(f">{n}I", data, zs + 12)
    try:
        cs, _ = find(data, s, e, [b"stco"])
        offsets = struct.unpack_from(f">{n}I", data, cs + 8)
    except KeyError:
        cs, _ = find(data, s, e, [b"co64"])
        offsets = struct.unpack_from(f">{n}Q", data, cs + 8)
    return [data[o : o + z] for o, z in zip(offsets, sizes)]


# --- C2PA --------------------------------------------------------------------

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@dataclass
class C2paChain:
    chain_pem: bytes  # end-entity then root
    key_pem: bytes
    root_pem: bytes


@lru_cache(maxsize=1)
def c2pa_chain() -> C2paChain:
    """A root CA and an ES256 end-entity certificate fit for C2PA signing.

    C2PA's certificate profile (C2PA 2.1 §14.5.1) wants an X.509 v3 end
    entity that is not a CA, with the digitalSignature key usage and an EKU
    from its list (here id-kp-emailProtection), and authority/subject key ids.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "labelcheck tests")])

    def usage(**on):
        keys = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{k: on.get(k, False) for k in keys})

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, ee_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    validity = dict(not_valid_before=now - datetime.timedelta(days=1), not_valid_after=now + datetime.timedelta(days=365))
    root = (
        x509.CertificateBuilder(subject_name=name("labelcheck test root"), issuer_name=name("labelcheck test root"), public_key=root_key.public_key(), serial_number=x509.random_serial_number(), **validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    ee = (
        x509.CertificateBuilder(subject_name=name("labelcheck test signer"), issuer_name=root.subject, public_key=ee_key.public_key(), serial_number=x509.random_serial_number(), **validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ee_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key = ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return C2paChain(ee.public_bytes(pem) + root.public_bytes(pem), key, root.public_bytes(pem))


def c2pa_sign(data: bytes, media_type: str = "image/jpeg", *, digital_source_type: str | None = IPTC + "trainedAlgorithmicMedia") -> bytes:
    """``data`` signed with a C2PA manifest (c2pa-python Builder), no TSA, offline."""
    import c2pa

    chain = c2pa_chain()
    action = {"action": "c2pa.created"}
    if digital_source_type:
        action["digitalSourceType"] = digital_source_type
    manifest = {
        "claim_generator_info": [{"name": "labelcheck-tests", "version": "1"}],
        "title": "fixture",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}, "builder": {"thumbnail": {"enabled": False}}}
    ctx = c2pa.Context.from_dict(settings)
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain.chain_pem, chain.key_pem, None))
    with c2pa.Builder(manifest, context=ctx) as builder:
        out = io.BytesIO()
        builder.sign(signer, media_type, io.BytesIO(data), out)
    return out.getvalue()


def tamper_pixels(signed_jpeg: bytes) -> bytes:
    """Flip one byte of entropy-coded data (after SOS): the data hash breaks."""
    sos = signed_jpeg.rindex(b"\xff\xda")
    at = sos + 40
    return signed_jpeg[:at] + bytes([signed_jpeg[at] ^ 0x55]) + signed_jpeg[at + 1 :]


def tamper_manifest(signed_jpeg: bytes) -> bytes:
    """Change one byte of the signed claim (the CBOR box after ``c2pa.claim``)."""
    cbor = signed_jpeg.index(b"cbor", signed_jpeg.index(b"c2pa.claim"))
    at = cbor + 24
    return signed_jpeg[:at] + bytes([signed_jpeg[at] ^ 0x01]) + signed_jpeg[at + 1 :]
