// The jobpoints playground: edit rule files, and see as you type what `jobpoints check`,
// `eval` and `diff` say about them, through the server's JSON API (POST /v1/check, /v1/eval,
// /v1/diff). Plain JavaScript, no build step. Text from the server is only ever put in the page
// as text (textContent), except the impact report, which the server renders as inert HTML.
"use strict";

(function () {
  const DEBOUNCE_MS = 300;
  const $ = (id) => document.getElementById(id);

  const state = {
    session: null,
    original: {}, // path → text, as served when the page opened
    edited: {}, // path → text, what the author has now
    docs: {}, // path → CodeMirror.Doc (keeps each file's undo history)
    current: null,
    diagnostics: [],
    gen: 0, // bumped by every edit; answers for older generations are dropped
    timer: null,
    inflight: [],
    traces: null, // eval results with traces, for the generation they were asked for
    lastEval: null,
    patch: "",
  };
  let cm;
  // Anything the Content-Security-Policy blocked (the browser test expects none).
  const violations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    violations.push(`${e.effectiveDirective} ${e.blockedURI}`);
  });

  // An element with attributes and children (strings become text nodes, never HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("data-") || k === "title" || k === "colspan") e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function modeFor(path) {
    return path.endsWith(".rhai") ? "rust" : "toml";
  }

  function changedPaths() {
    const all = new Set([...Object.keys(state.original), ...Object.keys(state.edited)]);
    return [...all].filter((p) => state.original[p] !== state.edited[p]).sort();
  }

  // ---- file tree -------------------------------------------------------------------------

  function renderTree() {
    const tree = $("tree");
    tree.textContent = "";
    const paths = [...new Set([...Object.keys(state.original), ...Object.keys(state.edited)])].sort();
    const counts = {};
    for (const d of state.diagnostics) {
      if (!d.file) continue;
      const c = (counts[d.file] = counts[d.file] || { error: 0, warning: 0 });
      c[d.severity] += 1;
    }
    const link = (path, label) => {
      const cls = [];
      if (path === state.current) cls.push("current");
      if (!(path in state.edited)) cls.push("deleted");
      else if (!(path in state.original)) cls.push("added");
      else if (state.original[path] !== state.edited[path]) cls.push("edited");
      const c = counts[path];
      const badge = c && (c.error || c.warning)
        ? el("span", { class: "badge" + (c.error ? "" : " warning") }, String(c.error || c.warning))
        : null;
      const a = el("a", { class: cls.join(" "), "data-path": path, title: path }, label, badge);
      a.addEventListener("click", () => {
        if (path in state.edited) openFile(path);
      });
      return a;
    };
    const dirs = new Map();
    for (const p of paths) {
      const slash = p.lastIndexOf("/");
      const dir = slash < 0 ? "" : p.slice(0, slash);
      if (!dirs.has(dir)) dirs.set(dir, []);
      dirs.get(dir).push(p);
    }
    for (const p of dirs.get("") || []) tree.append(el("li", {}, link(p, p)));
    for (const [dir, files] of dirs) {
      if (dir === "") continue;
      const ul = el("ul", {}, files.map((p) => el("li", {}, link(p, p.slice(dir.length + 1)))));
      tree.append(el("li", {}, el("div", { class: "dir" }, dir + "/"), ul));
    }
    const n = changedPaths().length;
    $("changes-count").textContent = n ? `(${n})` : "";
  }

  // ---- editor ----------------------------------------------------------------------------

  function openFile(path) {
    if (!state.docs[path]) {
      state.docs[path] = CodeMirror.Doc(state.edited[path], modeFor(path));
    }
    state.current = path;
    cm.swapDoc(state.docs[path]);
    $("current-file").textContent = path;
    $("revert-file").disabled = !(path in state.original) || state.original[path] === state.edited[path];
    renderTree();
    renderInline();
    cm.focus();
  }

  let inline = []; // line widgets and marks of the current file
  function renderInline() {
    for (const x of inline) x.clear();
    inline = [];
    cm.clearGutter("diag-gutter");
    for (const d of state.diagnostics) {
      if (d.file !== state.current || !d.line) continue;
      const line = d.line - 1;
      const sev = d.severity === "warning" ? " warning" : "";
      const marker = el("div", { class: "diag-marker" + sev, title: `${d.code}: ${d.message}` }, "●");
      cm.setGutterMarker(line, "diag-gutter", marker);
      const widget = el(
        "div",
        { class: "diag-widget" + sev, "data-code": d.code, "data-line": d.line },
        el("strong", {}, `${d.severity}[${d.code}] `),
        d.message,
        d.help ? el("div", { class: "help" }, "help: " + d.help) : null
      );
      inline.push(cm.addLineWidget(line, widget, { coverGutter: false, noHScroll: true }));
      const from = { line, ch: Math.max(0, (d.column || 1) - 1) };
      let to = d.end_line ? { line: d.end_line - 1, ch: Math.max(0, (d.end_column || 1) - 1) } : null;
      if (!to || (to.line === from.line && to.ch <= from.ch)) to = { line, ch: cm.getLine(line) ? cm.getLine(line).length : 0 };
      inline.push(cm.markText(from, to, { className: "diag-underline" + sev }));
    }
  }

  function onEdit() {
    state.edited[state.current] = cm.getValue();
    $("revert-file").disabled = !(state.current in state.original) || state.original[state.current] === state.edited[state.current];
    renderTree();
    schedule();
  }

  // ---- requests --------------------------------------------------------------------------

  function setStatus(kind, text) {
    const s = $("status");
    s.dataset.state = kind;
    s.textContent = text;
  }

  function schedule(delay) {
    state.gen += 1;
    document.body.dataset.busy = "true";
    setStatus("busy", "checking…");
    clearTimeout(state.timer);
    const gen = state.gen;
    state.timer = setTimeout(() => refresh(gen), delay === undefined ? DEBOUNCE_MS : delay);
  }

  async function post(path, body, signal) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
    let json = null;
    try {
      json = await r.json();
    } catch (e) {
      json = { error: `HTTP ${r.status}` };
    }
    return { status: r.status, body: json };
  }

  function jobsBody(explain) {
    const body = { files: state.edited, base: state.original, jobs: $("jobs-input").value, explain: !!explain };
    const at = $("at").value.trim();
    if (at) body.at = at;
    return body;
  }

  async function refresh(gen) {
    for (const c of state.inflight) c.abort();
    const ctrl = new AbortController();
    state.inflight = [ctrl];
    state.traces = null;
    const current = () => gen === state.gen;
    const files = state.edited;
    const check = post("/v1/check", { files }, ctrl.signal).then((r) => current() && showCheck(r));
    const evaluated = post("/v1/eval", jobsBody(false), ctrl.signal).then((r) => current() && showEval(r));
    const diffed = post("/v1/diff", { files, base: state.original }, ctrl.signal).then((r) => current() && showDiff(r));
    const results = await Promise.allSettled([check, evaluated, diffed]);
    if (!current()) return;
    const failed = results.find((r) => r.status === "rejected");
    if (failed && !(failed.reason && failed.reason.name === "AbortError")) {
      setStatus("failed", "cannot reach the server: " + failed.reason);
    }
    document.body.dataset.busy = "false";
    document.body.dataset.gen = String(gen);
  }

  function showCheck(r) {
    if (r.status !== 200) {
      state.diagnostics = [];
      setStatus("failed", r.body.error || `HTTP ${r.status}`);
    } else {
      const c = r.body;
      state.diagnostics = c.diagnostics;
      const plural = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;
      const text = `${plural(c.errors, "error")}, ${plural(c.warnings, "warning")}`;
      if (c.errors) setStatus("invalid", "✗ " + text);
      else if (c.warnings) setStatus("warnings", "✓ valid, " + plural(c.warnings, "warning"));
      else setStatus("ok", "✓ valid");
    }
    renderDiagnostics();
    renderTree();
    renderInline();
  }

  function renderDiagnostics() {
    const list = $("diagnostics");
    list.textContent = "";
    const ds = state.diagnostics;
    $("diag-count").textContent = ds.length ? `(${ds.length})` : "";
    if (!ds.length) {
      list.append(el("li", { class: "none" }, "No problems: `jobpoints check` passes."));
      return;
    }
    for (const d of ds) {
      const where = d.file ? `${d.file}${d.line ? ":" + d.line + (d.column ? ":" + d.column : "") : ""}` : "";
      const li = el(
        "li",
        { "data-code": d.code, "data-severity": d.severity, "data-file": d.file || "", "data-line": d.line || "" },
        el("span", { class: "sev" }, `${d.severity}[${d.code}]`),
        el("span", { class: "where" }, where),
        d.message,
        d.help ? el("span", { class: "help" }, "help: " + d.help) : null
      );
      li.addEventListener("click", () => {
        if (!d.file || !(d.file in state.edited)) return;
        openFile(d.file);
        if (d.line) {
          cm.setCursor({ line: d.line - 1, ch: Math.max(0, (d.column || 1) - 1) });
          cm.scrollIntoView(null, 120);
        }
      });
      list.append(li);
    }
  }

  const fmt = (x) => (x === undefined || x === null ? "" : Number(x).toFixed(6));
  function delta(before, after) {
    const d = Math.round((Number(after) - Number(before)) * 1e6) / 1e6;
    return d;
  }

  function showEval(r) {
    const note = $("jobs-note");
    const body = $("jobs-table").tBodies[0];
    body.textContent = "";
    note.textContent = "";
    if (r.status === 422) {
      const n = r.body.errors;
      note.textContent = `The edited rules are invalid (${n} error${n === 1 ? "" : "s"}): fix them to score the jobs.`;
      return;
    }
    if (r.status !== 200) {
      note.textContent = r.body.error || `HTTP ${r.status}`;
      return;
    }
    state.lastEval = r.body;
    if (!r.body.results.length) note.textContent = "No jobs: paste one JSON job, a JSON array, or JSONL above.";
    r.body.results.forEach((res, i) => {
      const before = res.before || {};
      const d = delta(before.points, res.points);
      const changed = d !== 0 || before.status !== res.status || before.rule !== res.rule;
      const tr = el(
        "tr",
        { class: changed ? "changed" : "", "data-index": i, "data-id": res.id || "" },
        el("td", {}, String(res.line)),
        el("td", { class: "id", title: res.id || "" }, res.id || ""),
        el("td", { class: "model", title: res.model || "" }, res.model || ""),
        el("td", { class: "status-" + res.status, title: res.reason || res.error || "" }, res.status),
        el("td", { class: "rule", title: res.rule || "" }, res.rule || ""),
        el("td", { class: "num before" }, fmt(before.points)),
        el("td", { class: "num after" }, fmt(res.points)),
        el("td", { class: "num delta " + (d > 0 ? "up" : d < 0 ? "down" : "") }, d ? (d > 0 ? "+" : "") + d.toFixed(6) : ""),
        el("td", {}, explainButton(i))
      );
      body.append(tr);
    });
  }

  function explainButton(i) {
    const b = el("button", { class: "explain", title: "How this job was priced (eval --explain)" }, "explain");
    b.addEventListener("click", () => toggleTrace(i, b));
    return b;
  }

  async function toggleTrace(i, button) {
    const row = button.closest("tr");
    const next = row.nextElementSibling;
    if (next && next.classList.contains("trace")) {
      next.remove();
      return;
    }
    const gen = state.gen;
    if (!state.traces || state.traces.gen !== gen) {
      button.disabled = true;
      const r = await post("/v1/eval", jobsBody(true));
      button.disabled = false;
      if (r.status !== 200) {
        row.after(el("tr", { class: "trace" }, el("td", { colspan: 9 }, r.body.error || `HTTP ${r.status}`)));
        return;
      }
      state.traces = { gen, results: r.body.results };
    }
    const res = state.traces.results[i];
    const text = res ? res.explain || res.error || res.reason || "no trace" : "no trace";
    row.after(el("tr", { class: "trace" }, el("td", { colspan: 9 }, text)));
  }

  function showDiff(r) {
    const impact = $("impact");
    if (r.status !== 200) {
      impact.textContent = r.body.error || `HTTP ${r.status}`;
      return;
    }
    // Rendered by the server from `diff --format markdown`, with all raw HTML and links made
    // inert (and the page's Content-Security-Policy runs no inline script anyway).
    impact.innerHTML = r.body.html;
    impact.dataset.summary = r.body.summary;
    $("impact-mark").textContent = r.body.changed ? "●" : "";
    state.patch = r.body.patch;
    $("patch").textContent = r.body.patch || "";
    const n = changedPaths().length;
    $("patch-note").textContent = n
      ? `${n} file${n === 1 ? "" : "s"} changed; apply at the repository root with \`git apply rules.patch\``
      : "No changes yet.";
  }

  // ---- page wiring -----------------------------------------------------------------------

  function selectTab(name) {
    for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.id === "tab-" + name);
  }

  function wire() {
    for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => selectTab(b.dataset.tab));
    $("jobs-input").addEventListener("input", () => schedule());
    $("at").addEventListener("input", () => schedule());
    $("examples").addEventListener("click", () => {
      $("jobs-input").value = state.session.examples;
      schedule(0);
    });
    $("upload").addEventListener("change", async (e) => {
      const f = e.target.files[0];
      if (!f) return;
      $("jobs-input").value = await f.text();
      e.target.value = "";
      schedule(0);
    });
    $("copy-patch").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(state.patch);
        $("patch-note").textContent = "Copied.";
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents($("patch"));
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        $("patch-note").textContent = "Selected: copy with Ctrl+C.";
      }
    });
    $("download-patch").addEventListener("click", () => {
      const url = URL.createObjectURL(new Blob([state.patch], { type: "text/x-diff" }));
      const a = el("a", { href: url, download: "rules.patch" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });
    $("new-file").addEventListener("click", () => {
      const path = (prompt("Path of the new rule file, e.g. models/my-model.toml or formulas/f.rhai") || "").trim();
      if (!path) return;
      if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*\.(toml|rhai)$/.test(path)) {
        alert("A rule file is a relative path of letters, digits, `.`, `_`, `-` and `/`, ending in .toml or .rhai.");
        return;
      }
      if (!(path in state.edited)) {
        state.edited[path] = "";
        delete state.docs[path];
      }
      openFile(path);
      schedule(0);
    });
    $("delete-file").addEventListener("click", () => {
      const path = state.current;
      if (!path || !confirm(`Remove ${path} from the rule set?`)) return;
      delete state.edited[path];
      delete state.docs[path];
      const next = Object.keys(state.edited).sort()[0];
      if (next) openFile(next);
      renderTree();
      schedule(0);
    });
    $("revert-file").addEventListener("click", () => {
      const path = state.current;
      if (!(path in state.original)) return;
      state.docs[path].setValue(state.original[path]);
    });
  }

  async function start() {
    wire();
    cm = CodeMirror($("editor"), {
      lineNumbers: true,
      gutters: ["CodeMirror-linenumbers", "diag-gutter"],
      indentUnit: 2,
      tabSize: 2,
      extraKeys: { Tab: (c) => c.replaceSelection("  ") },
    });
    cm.on("change", onEdit);
    let r;
    try {
      r = await fetch("session.json");
      state.session = await r.json();
    } catch (e) {
      setStatus("failed", "cannot load the session: " + e);
      return;
    }
    const s = state.session;
    state.original = s.files;
    state.edited = Object.assign({}, s.files);
    $("origin").textContent = `${s.rules} · ruleset ${s.ruleset.slice(0, 12)} · jobpoints ${s.version}`;
    $("jobs-input").value = s.examples;
    const first = ["families/sdxl10.toml", "kinds.toml"].find((p) => p in s.files) || Object.keys(s.files).sort()[0];
    if (first) openFile(first);
    schedule(0);
  }

  // For tests and the curious: the page's state, read-only by convention.
  window.playground = { state, openFile, violations, get editor() { return cm; } };
  start();
})();
