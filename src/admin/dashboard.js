// dashboard.js - the Portico admin dashboard (served by src/admin/dashboard.c).
//
// Plain browser JavaScript, no framework and no build step. The bearer token the user types
// in lives only in the closure variable `token` below: never in localStorage, sessionStorage,
// a cookie or the URL, so it is gone when the page is closed or reloaded. Every call sends it
// as Authorization: Bearer. Data from the server is put into the page as text
// (textContent), never as HTML.
//
// Every POLL_MS the page reads /metrics (Prometheus text, parsed here) and /api/changes:
// rates are counter deltas between two reads, and p50/p95/p99 come from the deltas of the
// request duration histogram's buckets (linear inside a bucket, as Prometheus'
// histogram_quantile does). The rules panel lists each project's and alias's proxy rules;
// drag and drop reorders a list (PUT .../reorder with every id of the list), the checkbox
// enables or disables a rule, and Edit opens a form; PATCHes send If-Match with the rule's
// updatedAt, so a concurrent change is a 409 and the list is read again.
"use strict";

(function () {
  const POLL_MS = 2000;
  let token = null; // the bearer token: memory only
  let timer = null;
  let last = null; // the previous metrics sample: {t, total, errors, buckets}
  let editing = null; // the rule the editor shows

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids) e.append(k);
    return e;
  }

  function status(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.className = isError ? "error" : "";
  }

  // One API call: {status, body (parsed JSON or text), etag}. Throws only on network errors.
  async function api(method, path, body, headers) {
    const h = Object.assign({ Authorization: "Bearer " + token }, headers || {});
    const init = { method, headers: h, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      h["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    const ct = r.headers.get("Content-Type") || "";
    const data = ct.startsWith("application/json") ? await r.json() : await r.text();
    return { status: r.status, body: data, etag: r.headers.get("ETag") };
  }

  function errorText(r) {
    const errs = r.body && r.body.errors;
    if (errs && errs.length)
      return errs.map((e) => (e.field ? e.field + ": " : "") + e.message).join("; ");
    return "HTTP " + r.status;
  }

  // ---- metrics ------------------------------------------------------------------------

  // Prometheus text -> [{name, labels: {k: v}, value}]
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split("\n")) {
      if (!line || line[0] === "#") continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      if (m[3]) {
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
        let lm;
        while ((lm = re.exec(m[3])) !== null)
          labels[lm[1]] = lm[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
      }
      out.push({ name: m[1], labels, value: parseFloat(m[4]) });
    }
    return out;
  }

  // The total of requests, of 5xx, and the duration buckets summed over every series.
  function summarize(samples) {
    let total = 0;
    let errors = 0;
    const buckets = new Map();
    const targets = new Map();
    for (const s of samples) {
      if (s.name === "portico_requests_total") {
        total += s.value;
        if (s.labels.code === "5xx") errors += s.value;
      } else if (s.name === "portico_request_duration_seconds_bucket") {
        const le = s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le);
        buckets.set(le, (buckets.get(le) || 0) + s.value);
      } else if (s.name === "portico_upstream_target_state" && s.value === 1) {
        targets.set(s.labels.upstream + "\u0000" + s.labels.target, {
          upstream: s.labels.upstream,
          target: s.labels.target,
          state: s.labels.state,
        });
      }
    }
    return { t: performance.now(), total, errors, buckets, targets };
  }

  // The q-quantile of cumulative buckets [[le, count], ...] sorted by le; null when empty.
  function quantile(q, bs) {
    if (!bs.length) return null;
    const n = bs[bs.length - 1][1];
    if (n <= 0) return null;
    const rank = q * n;
    let prevLe = 0;
    let prevCount = 0;
    for (const [le, c] of bs) {
      if (c >= rank) {
        if (le === Infinity) return prevLe;
        if (c === prevCount) return le;
        return prevLe + ((le - prevLe) * (rank - prevCount)) / (c - prevCount);
      }
      prevLe = le;
      prevCount = c;
    }
    return prevLe;
  }

  function ms(v) {
    if (v === null) return "–";
    return v < 0.001 ? (v * 1e6).toFixed(0) + " µs" : (v * 1000).toFixed(1) + " ms";
  }

  function showTraffic(now) {
    $("total").textContent = String(now.total);
    if (!last) return;
    const dt = (now.t - last.t) / 1000;
    if (dt <= 0) return;
    const dn = Math.max(0, now.total - last.total);
    const de = Math.max(0, now.errors - last.errors);
    $("rate").textContent = (dn / dt).toFixed(2);
    $("errors").textContent = (de / dt).toFixed(2);
    $("error-ratio").textContent = dn ? ((100 * de) / dn).toFixed(1) + " %" : "–";
    const les = [...now.buckets.keys()].sort((a, b) => a - b);
    const delta = les.map((le) =>
      [le, Math.max(0, now.buckets.get(le) - (last.buckets.get(le) || 0))]);
    $("p50").textContent = ms(quantile(0.5, delta));
    $("p95").textContent = ms(quantile(0.95, delta));
    $("p99").textContent = ms(quantile(0.99, delta));
  }

  function showTargets(targets) {
    const body = $("targets");
    body.replaceChildren();
    const list = [...targets.values()].sort((a, b) =>
      (a.upstream + a.target).localeCompare(b.upstream + b.target));
    if (!list.length) body.append(el("tr", {}, el("td", { colSpan: 3, text: "none" })));
    for (const t of list)
      body.append(
        el("tr", { class: "target-row", "data-target": t.target },
          el("td", { text: t.upstream }),
          el("td", { text: t.target }),
          el("td", { class: "state state-" + t.state, text: t.state })));
  }

  function showChanges(changes) {
    const ol = $("changes");
    ol.replaceChildren();
    for (const c of changes) {
      const what = c.change && typeof c.change === "object" ? JSON.stringify(c.change) : "";
      ol.append(
        el("li", { class: "change" },
          el("time", { text: c.time }), " ",
          el("b", { text: c.token || "" }), " ",
          el("code", { text: c.method + " " + c.path }), " ",
          el("span", { class: "what",
            text: what.length > 200 ? what.slice(0, 200) + "…" : what })));
    }
    if (!changes.length) ol.append(el("li", { text: "no changes since the start" }));
  }

  async function poll() {
    if (!token) return;
    try {
      const m = await api("GET", "/metrics");
      if (m.status === 200) {
        const now = summarize(parseMetrics(m.body));
        showTraffic(now);
        showTargets(now.targets);
        last = now;
      } else if (m.status === 401) {
        status("the token was refused: " + errorText(m), true);
      }
      const c = await api("GET", "/api/changes?limit=50");
      if (c.status === 200) showChanges(c.body.changes);
    } catch (e) {
      status("cannot reach Portico: " + e.message, true);
    }
  }

  // ---- rules ------------------------------------------------------------------------

  let dragged = null;

  function ruleItem(rule, list) {
    const toggle = el("input", { type: "checkbox", class: "toggle", checked: rule.isEnabled,
      title: "enabled" });
    toggle.addEventListener("change", () => setEnabled(rule, toggle.checked, list));
    const edit = el("button", { type: "button", class: "edit", text: "Edit" });
    edit.addEventListener("click", () => openEditor(rule, list));
    const li = el("li", { class: "rule" + (rule.isEnabled ? "" : " disabled"), draggable: true,
      "data-id": rule.id },
      el("span", { class: "handle", text: "⠿" }),
      el("span", { class: "pattern", text: rule.pathPattern }),
      el("span", { class: "target", text: "→ " + rule.targetUrl +
        (rule.stripPrefix ? " (strip prefix)" : "") }),
      el("span", { class: "description", text: rule.description || "" }),
      el("label", {}, toggle, " enabled"),
      edit);
    li.addEventListener("dragstart", (ev) => {
      dragged = li;
      li.classList.add("dragging");
      ev.dataTransfer.effectAllowed = "move";
      ev.dataTransfer.setData("text/plain", rule.id);
    });
    li.addEventListener("dragend", () => {
      li.classList.remove("dragging");
      dragged = null;
    });
    li.addEventListener("dragover", (ev) => {
      if (!dragged || dragged.parentNode !== li.parentNode) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "move";
      li.classList.add("drop-target");
    });
    li.addEventListener("dragleave", () => li.classList.remove("drop-target"));
    li.addEventListener("drop", (ev) => {
      li.classList.remove("drop-target");
      if (!dragged || dragged === li || dragged.parentNode !== li.parentNode) return;
      ev.preventDefault();
      li.parentNode.insertBefore(dragged, li);
      reorder(list);
    });
    return li;
  }

  // The rules of one project or alias: list = {kind: "project"|"alias", id, ul}.
  async function loadRules(list) {
    const r = await api("GET", "/api/proxy-rules/" + list.kind + "/" + encodeURIComponent(list.id));
    list.ul.replaceChildren();
    if (r.status !== 200) {
      list.ul.append(el("li", { class: "error", text: errorText(r) }));
      return;
    }
    for (const rule of r.body.rules) list.ul.append(ruleItem(rule, list));
    if (!r.body.rules.length) list.ul.append(el("li", { class: "empty", text: "no rules" }));
  }

  async function reorder(list) {
    const ids = [...list.ul.querySelectorAll("li.rule")].map((li) => li.dataset.id);
    const r = await api("PUT", "/api/proxy-rules/" + list.kind + "/" +
      encodeURIComponent(list.id) + "/reorder", { ruleIds: ids });
    await loadRules(list);
    if (r.status === 200) status("reordered the rules of " + list.label);
    else status("reorder refused (" + r.status + "): " + errorText(r), true);
  }

  async function setEnabled(rule, on, list) {
    const r = await api("PATCH", "/api/proxy-rules/" + encodeURIComponent(rule.id),
      { isEnabled: on }, { "If-Match": '"' + rule.updatedAt + '"' });
    await loadRules(list);
    if (r.status === 200) status((on ? "enabled " : "disabled ") + rule.pathPattern);
    else status("change refused (" + r.status + "): " + errorText(r), true);
  }

  function clearFieldErrors() {
    for (const p of document.querySelectorAll("#edit-form .field-error")) p.textContent = "";
  }

  function openEditor(rule, list) {
    editing = { rule, list };
    const f = $("edit-form");
    clearFieldErrors();
    f.pathPattern.value = rule.pathPattern;
    f.targetUrl.value = rule.targetUrl;
    f.timeout.value = String(rule.timeout);
    f.stripPrefix.checked = rule.stripPrefix;
    f.preserveHost.checked = rule.preserveHost;
    f.description.value = rule.description || "";
    f.headerConfig.value = JSON.stringify(rule.headerConfig || { add: {}, remove: [] });
    $("editor").showModal();
  }

  function fieldError(field, message) {
    const name = (field || "").split(/[.[]/)[0];
    const sel = '#edit-form .field-error[data-field="' + CSS.escape(name) + '"]';
    let p = document.querySelector(sel);
    if (!p) p = document.querySelector('#edit-form .field-error[data-field=""]');
    p.textContent = (p.textContent ? p.textContent + "; " : "") +
      (p.dataset.field ? "" : (field ? field + ": " : "")) + message;
  }

  async function saveEditor(ev) {
    ev.preventDefault();
    if (!editing) return;
    const f = $("edit-form");
    clearFieldErrors();
    const body = {
      pathPattern: f.pathPattern.value,
      targetUrl: f.targetUrl.value,
      stripPrefix: f.stripPrefix.checked,
      preserveHost: f.preserveHost.checked,
      description: f.description.value,
    };
    // The timeout is sent as typed when it is not a plain integer, so the API says why.
    const t = f.timeout.value.trim();
    body.timeout = /^-?[0-9]+$/.test(t) ? parseInt(t, 10) : t;
    try {
      body.headerConfig = f.headerConfig.value.trim() ? JSON.parse(f.headerConfig.value) : null;
    } catch (e) {
      fieldError("headerConfig", "not JSON: " + e.message);
      return;
    }
    const { rule, list } = editing;
    const r = await api("PATCH", "/api/proxy-rules/" + encodeURIComponent(rule.id), body,
      { "If-Match": '"' + rule.updatedAt + '"' });
    if (r.status === 200) {
      $("editor").close();
      editing = null;
      await loadRules(list);
      status("saved " + r.body.pathPattern);
      return;
    }
    if (r.status === 400 && r.body.errors) {
      for (const e of r.body.errors) fieldError(e.field, e.message);
    } else {
      fieldError("", "refused (" + r.status + "): " + errorText(r));
    }
  }

  async function loadProjects() {
    const root = $("projects");
    const r = await api("GET", "/api/projects");
    root.replaceChildren();
    if (r.status !== 200) {
      root.append(el("p", { class: "error", text: errorText(r) }));
      return;
    }
    if (!r.body.projects.length) root.append(el("p", { text: "no projects" }));
    const loads = [];
    for (const p of r.body.projects) {
      const box = el("div", { class: "project", "data-id": p.id });
      root.append(box);
      const ul = el("ul", { class: "rule-list", "data-kind": "project", "data-id": p.id });
      box.append(el("h3", { text: "Project " + p.name + " (" + p.hostnames.join(", ") + ")" }), ul);
      const list = { kind: "project", id: p.id, ul, label: "project " + p.name };
      loads.push(loadRules(list));
      const a = await api("GET", "/api/projects/" + encodeURIComponent(p.id) + "/aliases");
      if (a.status !== 200) continue;
      for (const al of a.body.aliases) {
        const aul = el("ul", { class: "rule-list", "data-kind": "alias", "data-id": al.id });
        box.append(el("h3", { text: "Alias " + al.name + " of " + p.name + " (" +
          al.hostnames.join(", ") + ")" }), aul);
        loads.push(loadRules({ kind: "alias", id: al.id, ul: aul, label: "alias " + al.name }));
      }
    }
    await Promise.all(loads);
  }

  // ---- connect ----------------------------------------------------------------------

  async function connect(ev) {
    ev.preventDefault();
    const input = $("token");
    token = input.value.trim();
    input.value = "";
    const r = await api("GET", "/api/changes?limit=1")
      .catch((e) => ({ status: 0, body: e.message }));
    if (r.status !== 200) {
      token = null;
      status(r.status ? "token refused: " + errorText(r) : "cannot reach Portico: " + r.body, true);
      return;
    }
    status("connected; read-only tokens can look but not change (the API answers 403)");
    $("main").hidden = false;
    $("disconnect").hidden = false;
    last = null;
    await poll();
    await loadProjects();
    timer = setInterval(poll, POLL_MS);
  }

  function disconnect() {
    token = null;
    clearInterval(timer);
    timer = null;
    last = null;
    $("main").hidden = true;
    $("disconnect").hidden = true;
    status("disconnected");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", connect);
    $("disconnect").addEventListener("click", disconnect);
    $("reload-rules").addEventListener("click", loadProjects);
    $("edit-form").addEventListener("submit", saveEditor);
    $("edit-cancel").addEventListener("click", () => {
      $("editor").close();
      editing = null;
    });
  });
})();
