"""The page at / in a real browser: headless Chromium driven by Selenium (issue 18).

A person types the lecture's sentence and sees "Paris" marked, and nothing else; moves
the threshold slider and sees the marks follow the probabilities already returned, with
no new request; clicks "Paris" and sees its window, the computation graph and the
saliency, whose every number is read back and checked against POST /v1/explain's JSON
fetched separately; types <img src=x onerror=alert(1)> and sees it as text.  Debian's
chromium and chromium-driver are needed: `make test` installs them when missing.

NER_WINDOW_SCREENSHOT=docs/serve.png (`make screenshot`) also saves the page with Paris
explained there, for the README; NER_WINDOW_SCREENSHOT_MODEL serves another model than the
tests' tiny one (`make screenshot` passes runs/latest, the default model).
"""

import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait
from starlette.testclient import TestClient

from ner_window.artifact import save_model
from ner_window.model import init_params
from ner_window.serve import create_app
from ner_window.vocab import SPECIALS, Vocab
from ner_window.windows import CASING_CLASSES
from serving import start_server, stop_server

LECTURE = "museums in Paris are amazing"
XSS = "<img src=x onerror=alert(1)>"
# what Chromium needs here: root (no sandbox), no GPU, a small /dev/shm, and a closed network
# (without the background-networking flags it stalls on connections it cannot make)
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1280,1000"]


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("chromium and chromedriver are not installed; `make test` installs them "
                    "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="ner-window-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)  # a given driver: no download
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def site(tiny_model_dir):
    # `make screenshot` pictures the default model (NER_WINDOW_SCREENSHOT_MODEL=runs/latest); tests use tiny
    proc, port = start_server(os.environ.get("NER_WINDOW_SCREENSHOT_MODEL") or tiny_model_dir)
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


def wait(driver, condition, timeout=10):
    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def open_page(driver, url):
    driver.get_log("browser")  # from here on, severe_console_errors() sees this page's messages only
    driver.get(url + "/")
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def tag_text(driver, text):
    """Type ``text`` as a person would and press the Tag button; wait for its marks."""
    box = driver.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "tag").click()
    wait(driver, lambda d: marked_text(d) == text)


def marked_text(driver) -> str | None:
    """The marked view's text without the label badges (LOC), or None before any."""
    return driver.execute_script(
        "const t = document.querySelector('#marked .text'); if (!t) return null;"
        "const c = t.cloneNode(true); c.querySelectorAll('.badge').forEach(b => b.remove()); return c.textContent;")


def marks(driver) -> list[str]:
    return [m.get_attribute("data-text") for m in driver.find_elements(By.CSS_SELECTOR, "#marked mark")]


def fetches(driver) -> int:
    return driver.execute_script("return performance.getEntriesByType('resource')"
                                 ".filter(e => e.initiatorType === 'fetch').length")


def expected_marks(tagged: dict, threshold: float) -> list[str]:
    """README's rule, from the API's p: LOC where p >= threshold; spans are runs of LOC tokens."""
    out, run = [], []
    for tok in tagged["tokens"] + [None]:
        if tok is not None and tok["p"] >= threshold:
            run.append(tok)
        elif run:
            out.append(tagged["text"][run[0]["start"]:run[-1]["end"]])
            run = []
    return out


def severe_console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# ------------------------------------------------------------------ marks, slider


def test_the_lecture_sentence_marks_paris_and_nothing_else(browser, site):
    open_page(browser, site)
    tag_text(browser, LECTURE)
    assert marks(browser) == ["Paris"]
    assert marked_text(browser) == LECTURE
    assert "tuned on dev" in browser.find_element(By.ID, "threshold-note").text  # configs/tiny.yaml's rule
    tagged = post(site + "/v1/tag", {"text": LECTURE})
    tokens = browser.find_elements(By.CSS_SELECTOR, "#marked .tok")
    assert [t.text for t in tokens] == [t["text"] for t in tagged["tokens"]]
    for el, tok in zip(tokens, tagged["tokens"]):  # the tooltip gives each word's P(location)
        shown = float(el.get_attribute("title").rsplit("= ", 1)[1])
        assert shown == pytest.approx(tok["p"], rel=1e-5, abs=1e-9)
    assert browser.find_element(By.CSS_SELECTOR, "#spans li b").text == "Paris"
    assert severe_console_errors(browser) == []


def test_the_slider_re_marks_from_the_returned_probabilities_without_a_request(browser, site):
    open_page(browser, site)
    tag_text(browser, LECTURE)
    tagged = post(site + "/v1/tag", {"text": LECTURE})
    slider, value = browser.find_element(By.ID, "threshold"), browser.find_element(By.ID, "threshold-value")
    before = fetches(browser)
    slider.send_keys(Keys.END)  # threshold 1: no p reaches it
    assert value.text == "1.000" and marks(browser) == expected_marks(tagged, 1.0) == []
    slider.send_keys(Keys.HOME)  # threshold 0: every token is a location, one span
    assert value.text == "0.000" and marks(browser) == expected_marks(tagged, 0.0) == [LECTURE]
    slider.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)  # 0.002, one step of 0.001 each
    assert value.text == "0.002"
    assert marks(browser) == expected_marks(tagged, 0.002)
    for _ in range(3):
        slider.send_keys(Keys.PAGE_UP)
    t = float(value.text)
    assert 0 < t < 1 and marks(browser) == expected_marks(tagged, t)
    assert fetches(browser) == before  # all of it without asking the server again
    browser.find_element(By.ID, "threshold-reset").click()
    model = post_get(site + "/v1/model")
    assert float(value.text) == pytest.approx(model["threshold"], abs=5e-4)
    assert marks(browser) == [s["text"] for s in tagged["spans"]] == ["Paris"]


def post_get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as res:
        return json.loads(res.read())


# ------------------------------------------------------------------ a word's window


def number_or_list(text: str):
    text = text.strip()
    if text.startswith("["):
        return [float(a) for a in text.strip("[]").split(",")]
    return float(text)


def lookup(ex: dict, key: str):
    for part in key.split("."):
        ex = ex[int(part)] if isinstance(ex, list) else ex[part]
    return ex


def check_numbers_against(browser, ex: dict) -> set[str]:
    """Every [data-key] value in the window panel equals the explain JSON's value at that key."""
    seen = set()
    for node in browser.find_elements(By.CSS_SELECTOR, "#window [data-key]"):
        key, text = node.get_attribute("data-key"), node.get_attribute("textContent")
        want = lookup(ex, key)
        if isinstance(want, str):
            assert text == want, key
        else:
            got = number_or_list(text)
            assert np.allclose(got, want, rtol=1e-3, atol=1e-12), (key, text, want)  # 4 significant figures
        seen.add(key)
    return seen


def test_clicking_paris_shows_its_window_graph_and_saliency_as_the_explain_json(browser, site):
    open_page(browser, site)
    tag_text(browser, LECTURE)
    browser.find_elements(By.CSS_SELECTOR, "#marked .tok")[2].click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#window svg.graph"))
    ex = post(site + "/v1/explain", {"text": LECTURE, "index": 2, "label": 1})
    panel = browser.find_element(By.ID, "window")
    assert "“Paris” (token 3 of 5)" in panel.find_element(By.TAG_NAME, "h2").text
    rows = panel.find_elements(By.CSS_SELECTOR, "table.win tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == LECTURE.split()
    assert [r.find_elements(By.TAG_NAME, "td")[4].text for r in rows] == [w["casing"] for w in ex["window"]]
    # the casing class, with a gazetteer model's tag after a "+" ("title+begins" for Paris)
    assert [w["casing"].split("+")[0] for w in ex["window"]] == ["lower", "lower", "title", "lower", "lower"]
    graph = panel.find_element(By.CSS_SELECTOR, "svg.graph").get_attribute("textContent")
    for title in ("z = W x + b", "h = f(z) = tanh(z)", "s = uᵀh + c", "J = CE(σ(s), y)", "upstream", "local",
                  "downstream", "∂J/∂x = Wᵀδ", "δ = ∂J/∂h ∘ f′(z)"):
        assert title in graph, title
    seen = check_numbers_against(browser, ex)
    # the forward values, the whole backward chain, ∂J/∂x per word, and the saliency were all read back
    assert {"forward.x.norm", "forward.z.norm", "forward.h.norm", "forward.s", "forward.p", "backward.J",
            "backward.delta_s", "backward.u.norm", "backward.dJ_dh.norm", "backward.f_prime.norm",
            "backward.delta.norm", "backward.W.norm", "backward.dJ_dx.norm", "backward.dW.norm",
            "backward.db.norm", "backward.du.norm", "backward.dc"} <= seen
    assert {f"window.{j}.{k}" for j in range(5) for k in ("dJ_dx_norm", "ds_dx_norm", "casing")} <= seen
    check_the_chain(panel)
    bars = panel.find_elements(By.CSS_SELECTOR, "table.sal .bar.grad")
    widths = [b.size["width"] for b in bars]
    norms = [w["ds_dx_norm"] for w in ex["window"]]
    assert widths.index(max(widths)) == norms.index(max(norms))  # the longest bar is the largest gradient

    save_screenshot(browser)

    # the other gold label: the backward pass is redone, the forward pass is the same
    Select(panel.find_element(By.ID, "label")).select_by_value("0")
    ex0 = post(site + "/v1/explain", {"text": LECTURE, "index": 2, "label": 0})
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, '#window [data-key="backward.y"]').text == "0")
    check_numbers_against(browser, ex0)
    assert ex0["backward"]["delta_s"] == pytest.approx(ex0["forward"]["p"])  # δs = p - 0
    assert severe_console_errors(browser) == []


# The lecture's backward chain, node by node: which gradient is upstream, local and downstream.
CHAIN = {
    "z = W x + b": {"upstream": "backward.delta.norm", "local": "backward.W.norm",
                    "downstream": "backward.dJ_dx.norm"},
    "h = f(z) = tanh(z)": {"upstream": "backward.dJ_dh.norm", "local": "backward.f_prime.norm",
                           "downstream": "backward.delta.norm"},
    "s = uᵀh + c": {"upstream": "backward.delta_s", "local": "backward.u.norm", "downstream": "backward.dJ_dh.norm"},
    "J = CE(σ(s), y)": {"local": "backward.delta_s", "downstream": "backward.delta_s"},
}


def check_the_chain(panel):
    """Each node shows the lecture's gradients in the right roles, each node's downstream is the
    upstream of the node before it, and the shown numbers obey upstream × local = downstream
    where a summary allows the check: ‖∂J/∂h‖ = ‖u‖ |δs| and δs = p - y."""
    nodes = {}
    for g in panel.find_elements(By.CSS_SELECTOR, "svg.graph g.node"):
        title = g.find_element(By.CSS_SELECTOR, ".title").get_attribute("textContent")
        nodes[title] = {t.get_attribute("data-role"): t.find_elements(By.CSS_SELECTOR, "[data-key]")
                        for t in g.find_elements(By.CSS_SELECTOR, "text[data-role]")}
        nodes[title] = {r: (v[0].get_attribute("data-key") if v else None) for r, v in nodes[title].items()}
    titles = list(nodes)
    assert titles[1:] == list(CHAIN), titles
    for title, roles in CHAIN.items():
        assert {r: nodes[title][r] for r in roles} == roles, title
    assert nodes[titles[-1]]["upstream"] is None  # ∂J/∂J = 1 starts the chain
    for left, right in zip(titles[1:], titles[2:]):
        assert nodes[left]["upstream"] == nodes[right]["downstream"], (left, right)
    shown = {el.get_attribute("data-key"): float(el.get_attribute("textContent"))
             for el in panel.find_elements(By.CSS_SELECTOR, "svg.graph [data-key]")}
    assert shown["backward.dJ_dh.norm"] == pytest.approx(shown["backward.u.norm"] * abs(shown["backward.delta_s"]),
                                                         rel=2e-3)
    assert shown["backward.delta_s"] == pytest.approx(shown["forward.p"] - shown["backward.y"], abs=2e-4)


def save_screenshot(browser):
    """The page with Paris explained, full height; also to $NER_WINDOW_SCREENSHOT when set."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(height + 100, 4000))
    png = browser.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    target = os.environ.get("NER_WINDOW_SCREENSHOT")
    if target:
        Path(target).write_bytes(png)
    browser.set_window_size(1280, 1000)


# ------------------------------------------------------------------ user text is text


def test_user_text_is_shown_as_text_and_never_run(browser, site):
    open_page(browser, site)
    tag_text(browser, XSS)
    assert marked_text(browser) == XSS
    browser.find_elements(By.CSS_SELECTOR, "#marked .tok")[0].click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#window svg.graph"))
    assert XSS in browser.find_element(By.CSS_SELECTOR, "#window .raw pre").get_attribute("textContent")
    assert browser.execute_script("return document.querySelectorAll('img, script:not([src])').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    # an error message is text too: the server's message for an empty text is shown as it is
    browser.find_element(By.ID, "text").clear()
    browser.find_element(By.ID, "tag").click()
    error = browser.find_element(By.ID, "error")
    wait(browser, lambda d: error.is_displayed())
    assert '"text" is empty' in error.text


# ------------------------------------------------------------------ other models and other JSON


@pytest.fixture(scope="module")
def multiclass_dir(tmp_path_factory):
    words = [*SPECIALS, "museums", "in", "paris", "are", "amazing"]
    params = init_params(len(words), 6, 2, 5, n_casing=len(CASING_CLASSES), d_c=3, n_classes=5,
                         rng=np.random.default_rng(1))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "multiclass", "radius": 2, "hidden": 5, "activation": "relu"},
                       "train": {"loss": "bce", "pos_weight": 1.0}},  # multiclass models train with ce whatever train.loss says
            "classes": ["O", "LOC", "MISC", "ORG", "PER"]}
    path = tmp_path_factory.mktemp("browser-mc") / "model"
    save_model(path, params, Vocab(words), meta)
    return path


def test_a_multiclass_model_has_no_slider_and_explains_against_a_class(browser, multiclass_dir):
    proc, port = start_server(multiclass_dir)
    try:
        url = f"http://127.0.0.1:{port}"
        open_page(browser, url)
        assert not browser.find_element(By.ID, "threshold").is_enabled()
        assert "argmax" in browser.find_element(By.ID, "threshold-note").text
        tag_text(browser, LECTURE)
        tagged = post(url + "/v1/tag", {"text": LECTURE})
        assert marks(browser) == [s["text"] for s in tagged["spans"]]
        browser.find_elements(By.CSS_SELECTOR, "#marked .tok")[2].click()
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#window svg.graph"))
        graph = browser.find_element(By.CSS_SELECTOR, "#window svg.graph").get_attribute("textContent")
        assert "s = U h + c" in graph and "J = CE(softmax(s), y)" in graph and "f(z) = max(z, 0)" in graph
        check_numbers_against(browser, post(url + "/v1/explain", {"text": LECTURE, "index": 2, "label": 1}))
        assert severe_console_errors(browser) == []
    finally:
        stop_server(proc)


def test_the_renderer_tolerates_added_and_missing_keys(browser, site, tiny_model_dir):
    """A later model adds keys to the explain JSON (tag scores, a Viterbi path) or leaves some out."""
    open_page(browser, site)
    with TestClient(create_app(tiny_model_dir)) as c:
        ex = c.post("/v1/explain", json={"text": LECTURE, "index": 2}).json()
    added = {**ex, "viterbi": {"path": ["O", "O", "LOC", "O", "O"]}, "transitions": [[0.1, 0.2], [0.3, 0.4]],
             "forward": {**ex["forward"], "tag_scores": [[1.0, 2.0]] * 5}}
    missing = {k: v for k, v in ex.items() if k not in ("saliency", "notes")}
    missing["backward"] = {k: v for k, v in ex["backward"].items() if k not in ("dW", "du")}
    render = ("const n = NerWindowRender.explanation(arguments[0]); "
              "return [n.querySelectorAll('svg.graph .node').length, n.textContent.includes('viterbi')];")
    assert browser.execute_script(render, added) == [5, True]  # the added keys are in the raw JSON
    assert browser.execute_script(render, missing)[0] == 5
    assert severe_console_errors(browser) == []
