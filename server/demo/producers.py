"""The demo's producer keys and their registry entries. Keys live in the
data directory so that every worker (and every restart) signs with the same
ones; each is created once under the registry lock:

- the demo producer (``data/demo-producer.key``), registered;
- ``data/demo/unknown-producer.key``: never registered;
- ``data/demo/revoked-producer.key``: registered, then revoked through the
  registry, so both changes are on the ledger (docs/protocol.md §4).
"""

from __future__ import annotations

from labelcheck.ledger import keyfile as keys
from labelcheck.claims.trust import Producer
from labelcheck.ledger import note
from labelcheck.pipeline.config import Config
from labelcheck.pipeline.registry import registry_add, registry_lock, registry_revoke
from labelcheck.pipeline.services import Services
from labelcheck.util.times import now_text

DEMO_PRODUCER = "demo-producer"
UNKNOWN_PRODUCER = "demo-unknown-producer"
REVOKED_PRODUCER = "demo-revoked-producer"
REVOKED_FILING = "DEMO-REVOKED-0001"


def ensure_demo_producer(svc: Services) -> note.Signer:
    """The demo producer's signer: ``data/demo-producer.key`` (0600), created
    when absent and registered in trust.json (a ``registry`` ledger entry)."""
    cfg = svc.config
    with registry_lock(cfg.data_dir):
        if not cfg.demo_key_path.exists():
            keys.write_key_pair(keys.generate_key(DEMO_PRODUCER), cfg.data_dir)
    signer = keys.load_signer(cfg.demo_key_path)
    if svc.registry.lookup(signer.key_id) is None:
        producer = Producer(name="labelcheck demo producer", vkey=signer.vkey,
                            filing="DEMO-0000", roles=("producer",))

        def mutate(reg):
            if reg.lookup(producer.key_id) is not None:  # another worker won the race
                return None
            return registry_add(reg, producer, now_text())

        svc.change_registry(mutate)
    return signer


def demo_key(cfg: Config, name: str) -> note.Signer:
    """A demo key kept in ``data/demo/NAME.key``, created once for all workers."""
    path = cfg.data_dir / "demo" / f"{name}.key"
    with registry_lock(cfg.data_dir):
        if not path.exists():
            keys.write_key_pair(keys.generate_key(name), path.parent)
    return keys.load_signer(path)


def ensure_revoked_producer(svc: Services, signer: note.Signer) -> None:
    """Register ``signer`` and revoke it through the registry (two ledger
    entries), unless an earlier start did so already."""
    producer = Producer(name="labelcheck demo (revoked)", vkey=signer.vkey, filing=REVOKED_FILING,
                        roles=("producer",))

    def add(reg):
        return None if reg.lookup(signer.key_id) is not None else registry_add(reg, producer, now_text())

    def revoke(reg):
        found = reg.lookup(signer.key_id)
        if found is None or found.revoked_at is not None:
            return None
        now = now_text()
        return registry_revoke(reg, signer.key_id, now, now)

    svc.change_registry(add)
    svc.change_registry(revoke)
