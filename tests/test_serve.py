"""`ner-window serve`: the JSON API answers with the library's own objects, and every bad
request gets a JSON error with the right status and the server keeps answering (issue 18).

In-process through Starlette's TestClient for the routes, then a real `ner-window serve`
process (uvicorn, two workers) for what only a real server shows: a 10 MB body, the
model loaded by each worker, bad requests followed by a good one.  The expected answers
come from elsewhere: `ner-window predict` and `ner-window explain` on the command line,
the model's meta.json, and the status codes the issue names.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from ner_window.artifact import save_model
from ner_window.cli import cli
from ner_window.model import init_params
from ner_window.serve import Limits, create_app
from ner_window.vocab import SPECIALS, Vocab
from ner_window.windows import CASING_CLASSES
from serving import free_port, request, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
LECTURE = "museums in Paris are amazing"


def sentences(path: Path, n: int) -> list[str]:
    """The first ``n`` sentences of a CoNLL file, their tokens joined by spaces."""
    out, cur = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-DOCSTART-"):
            continue
        if line.strip():
            cur.append(line.split()[0])
        elif cur:
            out.append(" ".join(cur))
            cur = []
    return (out + [" ".join(cur)] if cur else out)[:n]


DEV_TEXTS = sentences(ROOT / "data" / "dev.txt", 300)


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    with TestClient(create_app(tiny_model_dir)) as c:
        yield c


@pytest.fixture(scope="module")
def multiclass_dir(tmp_path_factory):
    """A small random multiclass model, saved by the real artifact writer."""
    words = [*SPECIALS, "museums", "in", "paris", "are", "amazing"]
    params = init_params(len(words), 6, 2, 5, n_casing=len(CASING_CLASSES), d_c=3, n_classes=5,
                         rng=np.random.default_rng(0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "multiclass", "radius": 2, "hidden": 5, "activation": "tanh"},
                       "train": {"loss": "bce", "pos_weight": 1.0}},  # multiclass models train with ce whatever train.loss says
            "classes": ["O", "LOC", "MISC", "ORG", "PER"]}
    path = tmp_path_factory.mktemp("serve-mc") / "model"
    save_model(path, params, Vocab(words), meta)
    return path


def cli_json(*args) -> str:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 0, (r.output, r.exception)
    return r.stdout


# ------------------------------------------------------------------ the answers are predict's and explain's


def test_tag_one_text_is_predict_json(client, tiny_model_dir):
    r = client.post("/v1/tag", json={"text": LECTURE})
    assert r.status_code == 200
    assert r.json() == json.loads(cli_json("predict", "--model", tiny_model_dir, "--format", "json", LECTURE))
    assert [s["text"] for s in r.json()["spans"]] == ["Paris"]


def test_tag_many_texts_is_predict_jsonl_line_by_line(client, tiny_model_dir, tmp_path):
    src = tmp_path / "dev.txt"
    src.write_text("\n".join(DEV_TEXTS) + "\n", encoding="utf-8")
    expected = [json.loads(line) for line in cli_json("predict", "--model", tiny_model_dir, "--format", "jsonl",
                                                      "--file", src).splitlines()]
    r = client.post("/v1/tag", json={"texts": DEV_TEXTS})
    assert r.status_code == 200
    assert r.json() == {"results": expected}
    assert sum(len(x["spans"]) for x in expected) > 50  # the comparison covers many locations


def test_tag_at_another_threshold_is_predict_threshold(client, tiny_model_dir):
    text = DEV_TEXTS[3]
    r = client.post("/v1/tag", json={"text": text, "threshold": 0.01})
    assert r.json() == json.loads(cli_json("predict", "--model", tiny_model_dir, "--format", "json",
                                           "--threshold", "0.01", text))
    # and p is P(location) whatever the threshold, so the labels are exactly p >= 0.01
    assert all((t["label"] == "LOC") == (t["p"] >= 0.01) for t in r.json()["tokens"])


def test_explain_by_index_is_the_explain_command_json(client, tiny_model_dir):
    r = client.post("/v1/explain", json={"text": LECTURE, "index": 2})
    assert r.status_code == 200
    expected = json.loads(cli_json("explain", "--model", tiny_model_dir, "--format", "json", LECTURE, "--word", "Paris"))
    assert r.json() == expected
    assert r.json()["token"] == "Paris" and [w["token"] for w in r.json()["window"]] == LECTURE.split()


def test_explain_with_a_label_and_by_word(client, tiny_model_dir):
    by_word = client.post("/v1/explain", json={"text": LECTURE, "word": "museums", "label": 0}).json()
    expected = json.loads(cli_json("explain", "--model", tiny_model_dir, "--format", "json", LECTURE,
                                   "--word", "museums", "--label", "0"))
    assert by_word == expected and by_word["backward"]["y"] == 0.0


def test_model_describes_the_model_from_its_meta(client, tiny_model_dir):
    meta = json.loads((tiny_model_dir / "model" / "meta.json").read_text())
    info = client.get("/v1/model").json()
    assert info["path"] == str(tiny_model_dir / "model")
    assert (info["task"], info["classes"], info["threshold"]) == ("binary", ["O", "LOC"], meta["threshold"])
    assert info["threshold_rule"] == meta["config"]["train"]["threshold_rule"] == "tuned"  # configs/tiny.yaml
    assert info["train_data_sha256"] == meta["train_data_sha256"] and len(info["train_data_sha256"]) == 64
    assert info["dev_metrics"] == meta["dev_metrics"] and info["best_epoch"] == meta["best_epoch"]
    # configs/tiny.yaml: radius 2, H = 16, tanh, casing_dim 4, GloVe d = 50
    assert (info["radius"], info["window"], info["hidden"], info["activation"]) == (2, 5, 16, "tanh")
    assert (info["d"], info["d_c"], info["D"]) == (50, 4, 5 * (50 + 4))
    assert info["vocab_size"] == len(meta["vocab"])


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_multiclass_model_tags_and_explains(multiclass_dir):
    with TestClient(create_app(multiclass_dir)) as c:
        tagged = c.post("/v1/tag", json={"text": LECTURE}).json()
        assert all(t["label"] in ("O", "LOC", "MISC", "ORG", "PER") for t in tagged["tokens"])
        info = c.get("/v1/model").json()
        assert info["task"] == "multiclass" and info["threshold"] is None
        assert info["train_data_sha256"] is None  # not trained: the meta has no hash, and says so
        r = c.post("/v1/explain", json={"text": LECTURE, "index": 2, "label": "PER"})
        assert r.status_code == 200 and r.json()["backward"]["label_name"] == "PER"
        bad = c.post("/v1/tag", json={"text": LECTURE, "threshold": 0.3})
        assert bad.status_code == 422 and "binary models" in bad.json()["error"]["message"]


# ------------------------------------------------------------------ bad requests: JSON errors with the right status

BAD = [
    # (path, body bytes, status, words the message must contain)
    ("/v1/tag", b'{"text": ', 400, ["not JSON"]),
    ("/v1/tag", b"", 400, ["not JSON"]),
    ("/v1/tag", b'{"text": "caf\xe9"}', 400, ["not JSON"]),  # Latin-1, not UTF-8
    ("/v1/tag", b"[" * 100_000, 400, ["nested too deeply"]),
    ("/v1/tag", b'{"text": ' + b"9" * 5000 + b"}", 400, ["not JSON", "digits"]),
    ("/v1/tag", b'["museums in Paris"]', 400, ["a list", "JSON object"]),
    ("/v1/tag", b'{"text": 3}', 400, ['"text"', "string", "a number"]),
    ("/v1/tag", b'{"text": null}', 400, ['"text"', "null"]),
    ("/v1/tag", b'{"text": ""}', 400, ['"text"', "empty"]),
    ("/v1/tag", b'{"text": " \\n\\t "}', 400, ['"text"', "empty"]),
    ("/v1/tag", b'{"texts": "Paris"}', 400, ['"texts"', "list"]),
    ("/v1/tag", b'{"texts": []}', 400, ['"texts"', "empty"]),
    ("/v1/tag", b'{"texts": ["Paris", 7]}', 400, ['"texts"[1]', "string"]),
    ("/v1/tag", b'{"texts": ["Paris", ""]}', 400, ['"texts"[1]', "empty"]),
    ("/v1/tag", b'{"text": "a", "texts": ["b"]}', 400, ["not both"]),
    ("/v1/tag", b"{}", 400, ['"text"', '"texts"']),
    ("/v1/tag", b'{"txt": "Paris"}', 400, ["unknown field 'txt'"]),
    ("/v1/tag", b'{"text": "Paris", "threshold": "high"}', 400, ['"threshold"', "number"]),
    ("/v1/tag", b'{"text": "Paris", "threshold": 1.5}', 422, ["1.5", "from 0 to 1"]),
    ("/v1/tag", json.dumps({"texts": ["a"] * 100_000}).encode(), 413, ["100,000", "10,000"]),
    ("/v1/tag", b'{"text": "' + b"a " * 600_000 + b'"}', 413, ["1,000,000 bytes"]),
    ("/v1/explain", b'{"text": "museums in Paris are amazing", "index": -1}', 422, ["-1", "0 to 4"]),
    ("/v1/explain", b'{"text": "museums in Paris are amazing", "index": 5}', 422, ["5", "0 to 4"]),
    ("/v1/explain", b'{"text": "museums in Paris are amazing", "index": "2"}', 400, ['"index"', "integer"]),
    ("/v1/explain", b'{"text": "museums in Paris are amazing", "index": 2.0}', 400, ['"index"', "integer"]),
    ("/v1/explain", b'{"text": "museums in Paris are amazing", "index": true}', 400, ['"index"', "integer"]),
    ("/v1/explain", b'{"text": "museums in Paris are amazing"}', 400, ['"index"', '"word"']),
    ("/v1/explain", b'{"text": "museums in Paris", "index": 1, "word": "in"}', 400, ["not both"]),
    ("/v1/explain", b'{"text": "museums in Paris", "word": "Rome"}', 422, ["'Rome'", "not a token"]),
    ("/v1/explain", b'{"text": "museums in Paris", "index": 2, "label": 7}', 422, ["label", "out of range"]),
    ("/v1/explain", b'{"text": "museums in Paris", "index": 2, "label": null}', 400, ['"label"']),
    ("/v1/explain", b'{"index": 2}', 400, ['"text"', "string"]),
    ("/v1/explain", b'{"text": "\\u0000\\u0001", "index": 0}', 422, ["no tokens"]),
]


def assert_json_error(r, status: int, words: list[str]) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["status"] == status
    for w in words:
        assert w in err["message"], (w, err["message"])
    assert "Traceback" not in r.text and 'File "' not in r.text
    return err["message"]


@pytest.mark.parametrize("path, body, status, words", BAD, ids=[f"{p}-{s}-{i}" for i, (p, _, s, _) in enumerate(BAD)])
def test_bad_request_gets_a_json_error(client, path, body, status, words):
    assert_json_error(client.post(path, content=body), status, words)


def test_unknown_path_and_method_are_json_errors(client):
    assert_json_error(client.get("/v2/tag"), 404, ["/v2/tag", "POST /v1/tag"])
    r = client.get("/v1/tag")
    assert_json_error(r, 405, ["GET", "/v1/tag"])
    assert "POST" in r.headers["allow"]
    assert_json_error(client.get("/static/../serve.py"), 404, [])


def test_a_body_sent_in_chunks_is_cut_off_at_the_limit(tiny_model_dir):
    with TestClient(create_app(tiny_model_dir, Limits(max_body=1000))) as c:
        chunks = (b'{"text": "' + b"x" * 300, *([b"y" * 300] * 10), b'"}')
        r = c.post("/v1/tag", content=iter(chunks))  # no Content-Length: chunked
        assert_json_error(r, 413, ["1,000 bytes"])
        assert c.post("/v1/tag", content=b'{"text": "Paris"}').status_code == 200


def test_a_bug_is_a_500_json_error_that_reveals_nothing(client, monkeypatch):
    import ner_window.serve as serve

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/x.py line 3")

    monkeypatch.setattr(serve, "explain", broken)
    with TestClient(client.app, raise_server_exceptions=False) as c:
        r = c.post("/v1/explain", json={"text": LECTURE, "index": 0})
    message = assert_json_error(r, 500, ["internal error"])
    assert "secret" not in message


# ------------------------------------------------------------------ the page is the package's own files


def test_page_and_its_files_are_served_by_the_package(client):
    import re

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {"/static/render.js", "/static/app.js", "/static/ner-window.css"} <= set(refs)
    for ref in refs:  # nothing from another origin (no CDN): the page works offline
        assert ref.startswith("/static/") or ref.startswith("data:"), ref
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
    for name in ("render.js", "app.js", "ner-window.css"):
        source = client.get(f"/static/{name}").text
        urls = set(re.findall(r"https?://[^\s\"')]+", source)) - {"http://www.w3.org/2000/svg"}  # a namespace
        assert not urls, (name, urls)
        assert "@import" not in source and "url(http" not in source
        assert ".innerHTML" not in source and "insertAdjacentHTML" not in source  # text only, never markup


# ------------------------------------------------------------------ the command line


def run_cli(*args):
    return CliRunner().invoke(cli, ["serve", *map(str, args)])


def assert_user_error(r, *named):
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ner-window: error: "), r.stderr
    assert "Traceback" not in r.output
    for name in named:
        assert name in lines[0], (name, lines[0])


def test_serve_a_missing_model_is_one_line_and_exit_2(tmp_path):
    assert_user_error(run_cli("--model", tmp_path / "nothing", "--port", free_port()), "nothing", "no model here")
    assert_user_error(run_cli("--model", tmp_path / "nothing", "--workers", 2), "no model here")


def test_serve_a_port_in_use_is_one_line_and_exit_2(tiny_model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_user_error(run_cli("--model", tiny_model_dir, "--port", port), f"127.0.0.1:{port}", "--port")


def test_serve_without_the_extra_says_how_to_install_it(tiny_model_dir, monkeypatch):
    monkeypatch.delitem(sys.modules, "ner_window.serve")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` now raises ImportError
    assert_user_error(run_cli("--model", tiny_model_dir), "ner-window[serve]", "uvicorn")


def test_serve_bad_options_exit_2():
    assert run_cli("--workers", 0).exit_code == 2
    assert run_cli("--port", 70000).exit_code == 2


def test_a_server_worker_runs_blas_on_one_thread(tiny_model_dir):
    """Each worker process (uvicorn's factory) holds BLAS to one thread before it answers:
    the parallelism is --workers, and spinning BLAS threads of two workers cost 3.6x the
    requests/s (BENCHMARKS.md)."""
    code = ("import json, threadpoolctl\n"
            "from ner_window.serve import app_from_env\n"
            "before = [p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']\n"
            "app_from_env()\n"
            "after = [p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']\n"
            "print(json.dumps([before, after]))\n")
    env = {**os.environ, "NER_WINDOW_MODEL": str(tiny_model_dir)}
    env.pop("OPENBLAS_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout)
    assert after and set(after) == {1}, (before, after)


# ------------------------------------------------------------------ a real server


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    proc, port = start_server(tiny_model_dir, "--workers", "2")
    yield proc, port
    stop_server(proc)


def test_real_server_keeps_answering_after_every_bad_request(server):
    proc, port = server
    bad = [(path, body, status) for path, body, status, _ in BAD]
    bad.append(("/v1/tag", b'{"text": "' + b"x" * 10_000_000 + b'"}', 413))  # a 10 MB body
    for path, body, status in bad:
        got, answer = request(port, "POST", path, body)
        assert (got, answer["error"]["status"]) == (status, status), (path, body[:60], answer)
    got, answer = request(port, "POST", "/v1/tag", json.dumps({"text": LECTURE}).encode())
    assert got == 200 and [s["text"] for s in answer["spans"]] == ["Paris"]
    assert proc.poll() is None


def test_real_server_answers_on_one_connection_after_a_413(server):
    """uvicorn reads and drops the rest of a refused body, so the connection stays usable."""
    _, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/tag", body=b"x" * 3_000_000)
        res = conn.getresponse()
        assert res.status == 413 and json.loads(res.read())["error"]["status"] == 413
        conn.request("POST", "/v1/tag", body=json.dumps({"text": LECTURE}).encode())
        res = conn.getresponse()
        assert res.status == 200 and json.loads(res.read())["spans"][0]["text"] == "Paris"
    finally:
        conn.close()


def test_real_server_each_worker_loaded_the_model(server, tiny_model_dir):
    """Two workers: every answer, whichever worker gave it, is the model's."""
    _, port = server
    expected = json.loads(cli_json("predict", "--model", tiny_model_dir, "--format", "json", DEV_TEXTS[0]))
    for _ in range(20):
        assert request(port, "POST", "/v1/tag", json.dumps({"text": DEV_TEXTS[0]}).encode()) == (200, expected)
    assert request(port, "GET", "/v1/model")[1]["path"] == str(tiny_model_dir / "model")


def test_real_server_logs_requests_when_asked_and_stops_cleanly_on_sigterm(tiny_model_dir):
    proc, port = start_server(tiny_model_dir, "--access-log")
    assert request(port, "GET", "/v1/model")[0] == 200
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says what stopped it
    assert stop_server(proc) in (0, -signal.SIGTERM)
    out, err = proc.stdout.read(), proc.stderr.read()
    assert f"http://127.0.0.1:{port}/" in out and "1 worker" in out
    assert '"GET /v1/model HTTP/1.1" 200' in out + err
    assert "Traceback" not in err
