"""A C2PA-signed demo image: a throw-away X.509 chain (a root and an ES256
end-entity certificate) signs a manifest into the demo JPEG. c2pa-python and
cryptography are optional; without them the c2pa page is not offered."""

from __future__ import annotations

import datetime
import io

from labelcheck.pipeline.config import Config
from labelcheck.pipeline.registry import registry_lock
from labelcheck.util import atomic


def c2pa_image(cfg: Config, jpeg: bytes) -> bytes | None:
    """``jpeg`` with a C2PA manifest (c2pa.created, IPTC trainedAlgorithmicMedia)
    signed by a demo certificate chain; made once and kept in data/demo/ so
    every worker serves the same bytes. The chain's root is written beside it
    (``c2pa-anchors.pem``) for ``--c2pa-anchors``. None when c2pa-python or
    cryptography is missing."""
    out = cfg.data_dir / "demo" / "c2pa.jpg"
    with registry_lock(cfg.data_dir):
        if out.exists():
            return out.read_bytes()
        try:
            signed, root_pem = _c2pa_sign(jpeg)
        except ImportError:
            return None
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(out.parent / "c2pa-anchors.pem", root_pem)
        atomic.write_bytes(out, signed)  # last: its presence means both are there
        return signed


def _c2pa_sign(jpeg: bytes) -> tuple[bytes, bytes]:
    """Sign with a fresh root and ES256 end-entity certificate fit for C2PA
    (C2PA 2.1 §14.5.1: v3, not a CA, digitalSignature, an EKU from its list)."""
    import c2pa  # optional: c2pa-python and cryptography
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "labelcheck demo")])

    def usage(**on: bool) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{k: on.get(k, False) for k in names})

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = {"not_valid_before": now - datetime.timedelta(days=1), "not_valid_after": now + datetime.timedelta(days=3650)}
    root_key, ee_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder(subject_name=name("labelcheck demo root"), issuer_name=name("labelcheck demo root"),
                                    public_key=root_key.public_key(), serial_number=x509.random_serial_number(), **valid)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    ee = (x509.CertificateBuilder(subject_name=name("labelcheck demo signer"), issuer_name=root.subject,
                                  public_key=ee_key.public_key(), serial_number=x509.random_serial_number(), **valid)
          .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
          .add_extension(usage(digital_signature=True), critical=True)
          .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ee_key.public_key()), critical=False)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
          .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = ee.public_bytes(pem) + root.public_bytes(pem)
    key = ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    manifest = {
        "claim_generator_info": [{"name": "labelcheck-demo", "version": "1"}],
        "title": "labelcheck demo",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}}],
    }
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                "builder": {"thumbnail": {"enabled": False}}}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, key, None))
    with c2pa.Builder(manifest, context=c2pa.Context.from_dict(settings)) as builder:
        out = io.BytesIO()
        builder.sign(signer, "image/jpeg", io.BytesIO(jpeg), out)
    return out.getvalue(), root.public_bytes(pem)
