/* The page's wiring: read the controls, call the JSON API, hand the answers to NerWindowRender.

   State: the model (GET /v1/model), the last tagged text (POST /v1/tag) and the window being
   explained (POST /v1/explain).  Moving the threshold slider re-marks the last answer without
   another request.  An answer that arrives after a newer request was sent is dropped. */
"use strict";

(() => {
  const R = NerWindowRender;
  const el = R.el;
  const $ = (id) => document.getElementById(id);
  // atModel: the slider sits at the model's threshold, where the server's own labels are shown
  const state = { model: null, tagged: null, explained: null, atModel: true, tagSeq: 0, explainSeq: 0 };

  async function api(path, body) {
    const init = body === undefined ? {} :
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const res = await fetch(path, init);
    let data;
    try {
      data = await res.json();
    } catch (e) {
      throw new Error(`${path}: HTTP ${res.status}, and the answer is not JSON`);
    }
    if (!res.ok) throw new Error(data && data.error ? data.error.message : `${path}: HTTP ${res.status}`);
    return data;
  }

  function showError(e) {
    $("error").textContent = e ? e.message : "";
    $("error").hidden = !e;
  }

  // a binary WINDOW model thresholds p; a sentence-level model (threshold null) decodes whole sentences
  const binary = () => state.model && state.model.task === "binary" && state.model.threshold !== null;
  const threshold = () => Number($("threshold").value);

  function describeModel(m) {
    const ent = R.at(m, "dev_metrics.entity.f1");
    const sha = m.train_data_sha256 ? ` · training data sha256 ${m.train_data_sha256.slice(0, 12)}…` : "";
    $("model").textContent =
      `${m.task} model ${m.path}: classes ${m.classes.join(", ")}; radius m = ${m.radius} (windows of ${m.window}), ` +
      `d = ${m.d}${m.d_c ? " + d_c = " + m.d_c : ""}, D = ${m.D}, H = ${m.hidden}, f = ${m.activation}, ` +
      `${m.vocab_size.toLocaleString("en")} words` +
      (ent === undefined || ent === null ? "" : ` · dev LOC entity F1 ${R.fmt(ent, 3)} (epoch ${m.best_epoch})`) + sha;
  }

  function setUpSlider(m) {
    const slider = $("threshold");
    if (m.task === "binary" && m.threshold !== null) {
      slider.disabled = false;
      slider.value = String(m.threshold);
      $("threshold-note").textContent = `A token is a location where P(location) ≥ the threshold ` +
        `(this model's, ${m.threshold_rule === "fixed" ? "fixed by its config" : "tuned on dev"}: ` +
        `${R.fmt(m.threshold)}). Moving it re-marks the text from the ` +
        `probabilities already returned.`;
    } else {
      slider.disabled = true;
      $("threshold-reset").disabled = true;
      $("threshold-note").textContent = m.output === "sentence"
        ? `This sentence-level model tags each sentence with its most probable tag path (Viterbi), so there ` +
          `is no threshold to move; the shade and tooltips give the marginal P(location).`
        : `This ${m.task} model tags each token with its most probable class ` +
          `(argmax), so there is no threshold to move; the shade and tooltips still give P(location).`;
    }
    $("threshold-value").textContent = Number(slider.value).toFixed(3);
  }

  /** Labels at the slider's threshold: the server's own labels at the threshold it tagged with. */
  function currentLabels() {
    const t = state.tagged;
    if (!binary() || state.atModel) return t.tokens.map((tok) => tok.label);
    return R.labelsAt(t.tokens, threshold(), true);
  }

  function remark() {
    $("threshold-value").textContent = threshold().toFixed(3);
    if (!state.tagged) return;
    const labels = currentLabels();
    $("marked").replaceChildren(R.markedText(state.tagged, labels));
    $("spans").replaceChildren(...R.spanList(state.tagged, labels));
    if (state.explained !== null) {
      const sel = $("marked").querySelector(`.tok[data-i="${state.explained}"]`);
      if (sel) sel.classList.add("selected");
    }
  }

  async function tag() {
    const seq = ++state.tagSeq;
    $("tag").disabled = true;
    try {
      const tagged = await api("/v1/tag", { text: $("text").value });
      if (seq !== state.tagSeq) return;
      showError(null);
      state.tagged = tagged;
      state.explained = null;
      $("window").hidden = true;
      $("result").hidden = false;
      remark();
    } catch (e) {
      if (seq === state.tagSeq) showError(e);
    } finally {
      if (seq === state.tagSeq) $("tag").disabled = false;
    }
  }

  function labelChoice() {
    const select = el("select", { id: "label", "aria-label": "gold label y of the backward pass" });
    state.model.classes.forEach((c, k) => {
      if (k === 0 && !binary()) return; // multiclass: explain against an entity class
      select.append(el("option", { value: k }, `${k} (${c})`));
    });
    select.value = "1";
    select.addEventListener("change", () => explainToken(state.explained));
    return select;
  }

  async function explainToken(i) {
    if (!state.tagged || i === null) return;
    const seq = ++state.explainSeq;
    const label = $("label") ? Number($("label").value) : 1;
    try {
      const ex = await api("/v1/explain", { text: state.tagged.text, index: i, label });
      if (seq !== state.explainSeq) return;
      showError(null);
      state.explained = i;
      remark();
      const select = $("label") || labelChoice();
      const head = el("div", { class: "window-head" },
        el("h2", {}, `The window of “${ex.token}” (token ${ex.token_index + 1} of ${ex.tokens.length})`),
        el("label", {}, "gold label y ", select));
      $("window").replaceChildren(head, R.explanation(ex));
      $("window").hidden = false;
    } catch (e) {
      if (seq === state.explainSeq) showError(e);
    }
  }

  function onToken(ev) {
    const tok = ev.target.closest(".tok");
    if (tok) explainToken(Number(tok.dataset.i));
  }

  async function start() {
    $("tag").addEventListener("click", tag);
    $("text").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); tag(); }
    });
    $("threshold").addEventListener("input", () => { state.atModel = false; remark(); });
    $("threshold-reset").addEventListener("click", () => {
      if (state.model) $("threshold").value = String(state.model.threshold);
      state.atModel = true;
      remark();
    });
    $("marked").addEventListener("click", onToken);
    $("marked").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onToken(ev); }
    });
    try {
      state.model = await api("/v1/model");
      describeModel(state.model);
      setUpSlider(state.model);
      document.body.dataset.ready = "true";
    } catch (e) {
      showError(e);
    }
  }

  start();
})();
