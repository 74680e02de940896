"""Stage 12: the tagger and explain over HTTP, and the page that shows them.

    ner-window serve [--model DIR] [--host 127.0.0.1] [--port 8000] [--workers N]

An ASGI application (Starlette, run by uvicorn: the ``serve`` extra).  Each route
parses its request, calls the library and returns the library's own objects as JSON:

    GET  /              the page (ner_window/static/): text in, locations marked, a word's window explained
    GET  /static/NAME   the page's script and style, served from the package (no CDN: works offline)
    GET  /healthz       {"status": "ok"}
    GET  /v1/model      model_info(): task, classes, sizes, threshold, training-data hash, dev scores
    POST /v1/tag        {"text": str}            -> Tagged.to_dict()
                        {"texts": [str, ...]}    -> {"results": [Tagged.to_dict(), ...]}
                        optional "threshold": P(location) at which a binary model tags LOC [the model's]
    POST /v1/explain    {"text": str, "index": int}  (0-based token index; or "word": str instead)
                        optional "label": the gold label of the backward pass [1]
                        -> explain.explain()'s dict, the same as ``ner-window explain --format json``

Limits and errors live in one place each.  ``Guard`` (an ASGI middleware) reads every
request body and refuses one over ``Limits.max_body`` bytes with 413 before any route runs.
``on_error`` turns every error into ``{"error": {"status": N, "message": "..."}}`` with
that status, never a traceback:

    400  the body is not JSON, or a field is missing, unknown, empty or of the wrong type
    413  the body, or the number of texts in it, is over a limit (Limits)
    422  well formed, but the library refuses it: a token index out of range, a word not
         in the text, a label the model does not have, a threshold outside [0, 1]
    404 / 405  no such path / method;  500  a bug (the traceback goes to the server's log)

The model is loaded once per worker process: ``create_app`` loads it, and with
``--workers N`` uvicorn starts N processes that each call ``app_from_env``.  Routes
tag on the event loop rather than in a thread pool: tagging is CPU-bound Python and
numpy under the GIL, so a thread would add a hand-off and no parallelism; the
parallelism is --workers.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from importlib import resources

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse, Response
from starlette.routing import Route

from . import __version__
from .artifact import Model, resolve_model_dir
from .errors import DataError, NerWindowError, RequestError
from .explain import explain
from .tagger import MODEL_ENV, Tagger, default_model_path


class JSON(StarletteJSONResponse):
    """Starlette's JSONResponse encoded by orjson: the same values as json.dumps (every float in
    its shortest round-trip digits; 1e-6 where json writes 1e-06) at a tenth of the cost, which
    was a sixth of the time to answer a batch of texts."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class Limits:
    max_body: int = 1_000_000  # bytes in one request body
    max_texts: int = 10_000  # texts in one {"texts": [...]}


# The page's files: name -> media type.  Read once per worker, served from memory.
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "ner-window.css": "text/css; charset=utf-8",
    "render.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
# Only the package's own files run on the page: no inline script, no other origin (user text
# is escaped by render.js; this is the second lock on the same door).
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
TAG_FIELDS = ("text", "texts", "threshold")
EXPLAIN_FIELDS = ("text", "index", "word", "label")


# ---------------------------------------------------------------------------
# Parsing requests (every problem is a RequestError naming the field and the fix)
# ---------------------------------------------------------------------------


def json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if isinstance(value, bool):
        return "true/false"
    names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def json_object(body: bytes, fields: tuple[str, ...]) -> dict:
    """The request body as a JSON object whose keys are all among ``fields``."""
    try:
        obj = json.loads(body)
    except RecursionError:
        raise RequestError("the request body is JSON nested too deeply to read; send a JSON object such as "
                           '{"text": "museums in Paris are amazing"}') from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise RequestError(f"the request body is not JSON ({e}); send a JSON object such as "
                           f'{{"text": "museums in Paris are amazing"}}') from None
    if not isinstance(obj, dict):
        raise RequestError(f"the request body is {json_type(obj)}; send a JSON object with the fields "
                           f"{', '.join(fields)}")
    unknown = [k for k in obj if k not in fields]
    if unknown:
        raise RequestError(f"unknown field {', '.join(map(repr, unknown))}; this endpoint takes "
                           f"{', '.join(fields)}")
    return obj


def text_field(value, where: str) -> str:
    """A text to tag or explain: a string with something in it besides whitespace."""
    if not isinstance(value, str):
        raise RequestError(f"{where} must be a string, got {json_type(value)}")
    if not value.strip():
        raise RequestError(f"{where} is empty; give some text")
    return value


def texts_of(req: dict, limits: Limits) -> tuple[list[str], bool]:
    """(the texts to tag, whether the request gave a list) from {"text": ...} or {"texts": [...]}."""
    if ("text" in req) == ("texts" in req):
        raise RequestError('give "text": "..." (one text) or "texts": ["...", ...] (several), '
                           'not both and not neither')
    if "text" in req:
        return [text_field(req["text"], '"text"')], False
    texts = req["texts"]
    if not isinstance(texts, list):
        raise RequestError(f'"texts" must be a list of strings, got {json_type(texts)}')
    if not texts:
        raise RequestError('"texts" is an empty list; give at least one text')
    if len(texts) > limits.max_texts:
        raise RequestError(f'"texts" holds {len(texts):,} texts, over the limit of {limits.max_texts:,} '
                           f"a request; send them in several requests", status=413)
    return [text_field(t, f'"texts"[{i}]') for i, t in enumerate(texts)], True


def tagger_at(tagger: Tagger, threshold) -> Tagger:
    """``tagger``, or one that tags LOC at another P(location) threshold (binary models)."""
    if threshold is None:
        return tagger
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise RequestError(f'"threshold" must be a number from 0 to 1, got {json_type(threshold)}')
    if not tagger.binary:
        raise DataError(f'"threshold" applies to binary models (window output); {tagger.rule} (drop "threshold")')
    return Tagger(tagger.model, threshold, scorer=tagger.scorer)  # DataError (422) outside [0, 1]


def explain_args(req: dict) -> dict:
    """explain()'s arguments from {"text", "index" | "word", "label"?}, each of the right JSON type."""
    text = text_field(req.get("text"), '"text"')
    if ("index" in req) == ("word" in req):
        raise RequestError('give "index" (the 0-based index of a token in the text) or "word", '
                           'not both and not neither')
    index, word, label = req.get("index"), req.get("word"), req.get("label", 1)
    if "index" in req and (isinstance(index, bool) or not isinstance(index, int)):
        raise RequestError(f'"index" must be an integer (a 0-based token index), got {json_type(index)}')
    if "word" in req and not isinstance(word, str):
        raise RequestError(f'"word" must be a string, got {json_type(word)}')
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise RequestError(f'"label" must be a class index or name, got {json_type(label)}')
    return {"text": text, "word": word, "label": label, "index": index}


def model_info(model: Model) -> dict:
    """What the model is: task, classes, sizes, threshold, and where it came from (meta.json)."""
    params, meta = model.params, model.meta
    return {
        "path": str(model.path), "task": model.task, "output": model.output, "classes": model.classes,
        "threshold": model.threshold if model.task == "binary" and model.output == "window" else None,
        "threshold_rule": model.config.train.threshold_rule,  # "tuned" on dev, or "fixed" by the config
        "radius": model.radius, "window": params.window, "d": params.d, "d_c": params.d_c,
        "D": int(params.W.shape[1]), "hidden": params.hidden, "activation": model.activation,
        "vocab_size": len(model.vocab), "dtype": str(params.dtype),
        "train_data_sha256": meta.get("train_data_sha256"), "dev_metrics": meta.get("dev_metrics"),
        "best_epoch": meta.get("best_epoch"), "embeddings": meta.get("embeddings"),
        "package_version": meta.get("package_version"), "server_version": __version__,
    }


# ---------------------------------------------------------------------------
# Routes: parse, call the library, return its objects
# ---------------------------------------------------------------------------


async def tag(request: Request) -> Response:
    state = request.app.state
    req = json_object(await request.body(), TAG_FIELDS)
    texts, many = texts_of(req, state.limits)
    results = [t.to_dict() for t in tagger_at(state.tagger, req.get("threshold")).tag_many(texts)]
    return JSON({"results": results} if many else results[0])


async def explain_route(request: Request) -> Response:
    req = json_object(await request.body(), EXPLAIN_FIELDS)
    return JSON(explain(request.app.state.tagger.model, **explain_args(req)))


async def model_route(request: Request) -> Response:
    return JSON(request.app.state.info)


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def page(request: Request) -> Response:
    name = request.path_params.get("name", "index.html")
    if name not in request.app.state.files:
        raise HTTPException(404)
    return Response(request.app.state.files[name], media_type=STATIC[name], headers=PAGE_HEADERS)


ROUTES = [
    Route("/", page, methods=["GET"]),
    Route("/static/{name}", page, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/v1/model", model_route, methods=["GET"]),
    Route("/v1/tag", tag, methods=["POST"]),
    Route("/v1/explain", explain_route, methods=["POST"]),
]
API = "GET /, GET /healthz, GET /v1/model, POST /v1/tag, POST /v1/explain"


# ---------------------------------------------------------------------------
# Errors and limits, each in one place
# ---------------------------------------------------------------------------


def error_response(status: int, message: str, headers: dict | None = None) -> JSON:
    return JSON({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


async def on_error(request: Request, exc: Exception) -> Response:
    """Every error as JSON with its status: project errors, unknown paths and methods, bugs."""
    if isinstance(exc, RequestError):
        return error_response(exc.status, str(exc))
    if isinstance(exc, NerWindowError):
        return error_response(422, str(exc))
    if isinstance(exc, HTTPException) and exc.status_code == 404:
        return error_response(404, f"no such path {request.url.path}; the server answers {API}")
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return error_response(405, f"{request.method} is not allowed on {request.url.path}; the server answers "
                                   f"{API}", exc.headers)
    if isinstance(exc, HTTPException):
        return error_response(exc.status_code, str(exc.detail))
    # Starlette logs the traceback after this answer; the client learns nothing of the internals
    return error_response(500, "internal error: the server could not answer this request (its log has the details)")


class Guard:
    """ASGI middleware: read the request body, refusing one over ``max_body`` bytes with 413.

    A declared Content-Length over the limit is refused without reading the body; a body
    sent in chunks is refused as soon as it passes the limit.  The app then gets the body in
    one piece, so no route counts bytes.
    """

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        try:
            body = await self.read_body(scope, receive)
        except RequestError as e:
            # uvicorn reads and drops the rest of such a body, so the connection stays usable
            return await error_response(e.status, str(e))(scope, receive, send)
        if body is None:  # the client left
            return None
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:  # after the body, the next message is the client leaving
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def read_body(self, scope, receive) -> bytes | None:
        too_large = RequestError(f"the request body is over the limit of {self.max_body:,} bytes; send less "
                                 f"(split a batch of texts into several requests)", status=413)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def static_files() -> dict[str, bytes]:
    root = resources.files("ner_window") / "static"
    return {name: (root / name).read_bytes() for name in STATIC}


def create_app(model: str | os.PathLike | None = None, limits: Limits = Limits()) -> Starlette:
    """The application, with its model loaded ($NER_WINDOW_MODEL or runs/latest when ``model`` is None)."""
    tagger = Tagger.load(model)
    handlers = {HTTPException: on_error, NerWindowError: on_error, Exception: on_error}
    app = Starlette(routes=ROUTES, middleware=[Middleware(Guard, max_body=limits.max_body)],
                    exception_handlers=handlers)
    app.state.tagger, app.state.limits = tagger, limits
    app.state.info, app.state.files = model_info(tagger.model), static_files()
    return app


def app_from_env() -> Starlette:
    """uvicorn's factory for --workers N: each worker process loads the model $NER_WINDOW_MODEL names."""
    one_blas_thread()
    return create_app()


def one_blas_thread() -> None:
    """Hold BLAS to one thread in this server process: the parallelism is --workers.

    OpenBLAS splits even a sentence's (14, 270) x (270, 100) product over its threads, which
    then spin waiting for more; two workers with two spinning BLAS threads each answered 650
    single-sentence requests/s on 2 cores, and 2,360 with one (scripts/load_test.py).
    """
    from threadpoolctl import threadpool_limits  # a core dependency (scikit-learn's too)

    threadpool_limits(limits=1, user_api="blas")


# ---------------------------------------------------------------------------
# Running the server
# ---------------------------------------------------------------------------


def check_address(host: str, port: int) -> None:
    """NerWindowError unless ``host:port`` can be listened on (checked before uvicorn, which would exit 1)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind((host, port))
    except OSError as e:
        raise NerWindowError(f"cannot listen on {host}:{port} ({e.strerror or e}); give another --port, "
                             f"or a --host of this machine") from None


def run(model: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
        access_log: bool = False, log=print) -> None:
    """Serve until Ctrl-C or SIGTERM, with the model loaded in each of ``workers`` processes."""
    path = resolve_model_dir(default_model_path() if model is None else model).resolve()
    # load here first: a bad model directory is one error line, not a traceback in every worker
    app = create_app(path) if workers == 1 else None
    if app is None:
        Tagger.load(path)
    check_address(host, port)
    url_host = f"[{host}]" if ":" in host else host
    log(f"ner-window: serving {path} at http://{url_host}:{port}/ with {workers} worker"
        f"{'s' if workers > 1 else ''}; Ctrl-C stops")
    # uvicorn's access lines are logged at level info: shown with --access-log only
    options = {"host": host, "port": port, "log_level": "info" if access_log else "warning", "access_log": access_log}
    if app is not None:
        one_blas_thread()
        uvicorn.run(app, **options)
        return
    os.environ[MODEL_ENV] = str(path)  # each worker process loads the model from here
    uvicorn.run("ner_window.serve:app_from_env", factory=True, workers=workers, **options)
