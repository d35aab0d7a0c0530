"""The witness over HTTP: ``POST <prefix>/add-checkpoint`` (C2SP tlog-witness),
served by gunicorn (``labelcheck witness serve``) with keep-alive."""

from __future__ import annotations

from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication
from werkzeug.exceptions import HTTPException

from labelcheck.util import gunicorn_stalls
from labelcheck.util.gunicorn_refusals import OwnRefusals, codings_refused, raw_answer

from .protocol import Witness

MAX_BODY = 64 * 1024  # 63 proof lines and a checkpoint with its signatures fit many times over


def create_witness_app(witness: Witness) -> Flask:
    app = Flask("labelcheck-witness")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.before_request
    def transfer_codings() -> Response | None:
        refused = codings_refused(request.headers.get("Transfer-Encoding"))
        if refused is None:
            return None
        status, title, detail = refused
        return Response(f"{detail}\n", status=status, content_type="text/plain; charset=utf-8",
                        headers={"Connection": "close"})

    @app.post("/add-checkpoint")
    def add_checkpoint() -> Response:
        answer = witness.add_checkpoint(request.get_data())
        return Response(answer.body, status=answer.status, content_type=answer.content_type)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", content_type="text/plain; charset=utf-8")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        """Every error as the witness's own answers are: a line of plain text
        (not Flask's HTML page), with the headers it needs (Allow on a 405)."""
        text = f"the body is over {MAX_BODY} bytes" if exc.code == 413 else f"{exc.code} {exc.name}"
        answer = Response(text + "\n", status=exc.code, content_type="text/plain; charset=utf-8")
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                answer.headers[name] = value
        return answer

    return app


class WitnessWorker(OwnRefusals, gunicorn_stalls.StallTolerantThreadWorker):
    """The witness's worker: what gunicorn refuses is answered as the
    witness's other errors are, a line of plain text, and logged without
    the client's address (:mod:`labelcheck.util.gunicorn_refusals`)."""

    @staticmethod
    def refusal(status: int, reason: str, detail: str) -> bytes:
        body = (detail.replace("\r", " ").replace("\n", " ") + "\n").encode("utf-8", "replace")
        return raw_answer(status, reason, "text/plain; charset=utf-8", body)


class WitnessServer(BaseApplication):
    """gunicorn running one witness app (gthread: keep-alive connections)."""

    def __init__(self, app: Flask, host: str, port: int, threads: int = 4) -> None:
        self.app = app
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.options = {"bind": bind, "workers": 1, "threads": threads,
                        "worker_class": "labelcheck.witness.app.WitnessWorker",
                        "accesslog": None, "errorlog": "-", "keepalive": 30, "timeout": 30,
                        "control_socket_disable": True, "proc_name": "labelcheck-witness"}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def run(self) -> None:
        gunicorn_stalls.serve(self)  # requests sent while it was stopped are answered

    def load(self) -> Flask:
        return self.app
