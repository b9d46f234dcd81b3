/* callaudit web UI: upload, jobs, calls, call page, dashboard. Plain JS, hash routes, no build step.
 * DOM is built with h() and textContent only, so nothing from the server is ever parsed as HTML. */
"use strict";

(() => {
  const BASE = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const view = document.getElementById("view");
  const notice = document.getElementById("notice");
  let pollTimer = null;

  /* ------------------------------------------------------------------ helpers */

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const apiKey = () => localStorage.getItem("callaudit.apiKey") || "";

  function headers() {
    const key = apiKey();
    return key ? { "X-API-Key": key } : {};
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(typeof body.detail === "string" ? body.detail : `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, options) {
    const response = await fetch(BASE + path, Object.assign({ headers: headers() }, options || {}));
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : { detail: await response.text() };
    if (!response.ok) {
      if (response.status === 401) askForKey(body.detail);
      throw new ApiError(response.status, body);
    }
    return body;
  }

  function say(message, kind) {
    notice.textContent = message;
    notice.className = `notice ${kind || "info"}`;
    notice.hidden = !message;
  }

  function askForKey(reason) {
    say(`${reason || "An API key is required."} Set it with the "API key" button.`, "error");
  }

  document.getElementById("api-key-button").addEventListener("click", () => {
    const key = prompt("API key for this server (kept in this browser only):", apiKey());
    if (key === null) return;
    if (key) localStorage.setItem("callaudit.apiKey", key.trim());
    else localStorage.removeItem("callaudit.apiKey");
    say("");
    route();
  });

  function when(value) {
    if (!value) return "–";
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
  }

  function seconds(value) {
    return value === null || value === undefined ? "–" : Charts.clock(value);
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
  }

  function badge(text, cls) {
    return h("span", { class: `badge ${cls || ""}` }, text);
  }

  function statusBadge(status) {
    return badge(status || "–", `status-${status || "none"}`);
  }

  function sentimentBadge(label) {
    return label ? badge(label, `sent-${label}`) : "–";
  }

  function section(title, ...children) {
    return h("section", { class: "card" }, h("h2", {}, title), ...children);
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function setView(...children) {
    view.replaceChildren(...children);
  }

  /* ------------------------------------------------------------------ upload */

  function metadataFields() {
    return h("fieldset", { class: "meta" },
      h("legend", {}, "Call details (optional)"),
      h("label", {}, "Agent", h("input", { name: "agent_id", maxlength: 200, placeholder: "e.g. AG042" })),
      h("label", {}, "Customer", h("input", { name: "customer_id", maxlength: 200, placeholder: "e.g. CU1001" })),
      h("label", {}, "Customer phone", h("input", { name: "customer_phone", maxlength: 200 })),
      h("label", {}, "Call time", h("input", { name: "call_time", type: "datetime-local", step: 1 })),
      h("label", {}, "Direction",
        h("select", { name: "direction" }, h("option", { value: "" }, "–"), h("option", {}, "inbound"), h("option", {}, "outbound"))),
    );
  }

  function uploadForm(kind) {
    const isZip = kind === "zip";
    const progress = h("progress", { max: 100, value: 0, hidden: true });
    const result = h("div", { class: "upload-result" });
    const form = h("form", { class: "upload", "data-kind": kind },
      h("label", { class: "file" }, isZip ? "ZIP archive of recordings" : "Recording (wav, mp3, m4a, ogg, flac...)",
        h("input", { type: "file", name: "file", required: true, accept: isZip ? ".zip,application/zip" : "audio/*,.wav,.mp3,.m4a,.ogg,.opus,.flac" })),
      metadataFields(),
      h("button", { type: "submit" }, isZip ? "Upload ZIP" : "Upload recording"),
      progress,
      result,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData();
      for (const [name, value] of new FormData(form).entries()) {
        if (value === "" || (value instanceof File && !value.name)) continue;
        // datetime-local has no zone: send the browser's offset so the server stores the right instant.
        data.append(name, name === "call_time" ? withOffset(value) : value);
      }
      upload(isZip ? "upload/zip/" : "upload/audio/", data, progress, result);
    });
    return form;
  }

  function withOffset(local) {
    const d = new Date(local);
    if (Number.isNaN(d.getTime())) return local;
    const minutes = -d.getTimezoneOffset();
    const sign = minutes >= 0 ? "+" : "-";
    const abs = Math.abs(minutes);
    const time = local.length === 16 ? `${local}:00` : local;
    return `${time}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }

  function upload(path, data, progress, result) {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    progress.hidden = false;
    progress.value = 0;
    result.replaceChildren(h("p", { class: "muted" }, "Uploading…"));
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener("error", () => result.replaceChildren(h("p", { class: "error" }, "The upload failed: the server could not be reached.")));
    xhr.addEventListener("load", () => {
      progress.value = 100;
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { body = { detail: xhr.responseText }; }
      if (xhr.status === 202) {
        result.replaceChildren(h("p", {}, "Accepted: ", h("a", { href: `#/jobs/${body.job_id}` }, `job ${body.job_id}`)));
        const panel = h("div", { class: "task-panel" });
        result.appendChild(panel);
        watchTask(body.job_id, panel);
      } else {
        if (xhr.status === 401) askForKey(body.detail);
        result.replaceChildren(h("p", { class: "error" }, `Refused (${xhr.status}): ${body.detail || "unknown error"}`), fileList(body.files || []));
      }
    });
    xhr.send(data);
  }

  function fileList(files) {
    if (!files.length) return h("span");
    return h("table", { class: "files" },
      h("thead", {}, h("tr", {}, h("th", {}, "File"), h("th", {}, "Status"), h("th", {}, "Details"))),
      h("tbody", {}, files.map((f) => h("tr", { "data-file": f.file, "data-status": f.status },
        h("td", {}, f.record_id && f.status === "done" ? h("a", { href: `#/calls/${f.record_id}` }, f.file) : f.file),
        h("td", {}, statusBadge(f.status)),
        h("td", { class: "reason" }, resultText(f)),
      ))),
    );
  }

  function resultText(f) {
    const parts = [];
    if (f.result) {
      parts.push(`${f.result.status}, ${seconds(f.result.duration_s)}`);
      if (f.result.category) parts.push(f.result.category);
      if (f.result.customer_sentiment) parts.push(`customer ${f.result.customer_sentiment}`);
    }
    if (f.reason) parts.push(f.reason);
    return parts.join(" · ");
  }

  function taskSummary(task) {
    const c = task.counts || {};
    return h("p", { class: "task-summary", "data-task-status": task.status },
      statusBadge(task.status), ` ${task.kind} · ${task.files_total} file(s): `,
      `${c.done || 0} done, ${c.failed || 0} failed, ${c.running || 0} running, ${c.queued || 0} queued`);
  }

  function watchTask(taskId, panel) {
    stopPolling();
    const tick = async () => {
      try {
        const task = await api(`jobs/${encodeURIComponent(taskId)}`);
        panel.replaceChildren(taskSummary(task), fileList(task.files));
        if (task.status === "queued" || task.status === "running") pollTimer = setTimeout(tick, 1000);
      } catch (err) {
        panel.replaceChildren(h("p", { class: "error" }, err.message));
      }
    };
    tick();
  }

  function uploadView() {
    setView(
      h("div", { class: "grid two" },
        section("Upload one recording", uploadForm("audio")),
        section("Upload a ZIP of recordings", uploadForm("zip"),
          h("p", { class: "muted" }, "Each file in the archive is checked on its own; files that are not audio are listed with the reason.")),
      ),
    );
  }

  /* ------------------------------------------------------------------ jobs */

  async function jobsView() {
    const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    setView(section("Jobs", body));
    const jobs = await api("jobs?limit=100");
    if (!jobs.length) {
      body.replaceChildren(h("p", { class: "muted" }, "No jobs yet: upload a recording."));
      return;
    }
    body.replaceChildren(h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Task", "Kind", "Created", "Status", "Done", "Failed", "Running", "Queued"].map((t) => h("th", {}, t)))),
      h("tbody", {}, jobs.map((j) => h("tr", {},
        h("td", {}, h("a", { href: `#/jobs/${j.job_id}` }, j.job_id)),
        h("td", {}, j.kind), h("td", {}, when(j.created_at)), h("td", {}, statusBadge(j.status)),
        h("td", {}, j.counts.done), h("td", {}, j.counts.failed), h("td", {}, j.counts.running), h("td", {}, j.counts.queued),
      ))),
    ));
  }

  function jobView(taskId) {
    const panel = h("div", { class: "task-panel" });
    setView(section(`Job ${taskId}`, panel));
    watchTask(taskId, panel);
  }

  /* ------------------------------------------------------------------ calls */

  const FILTERS = [
    ["text", "Search transcripts", "input"],
    ["agent_id", "Agent", "input"],
    ["customer", "Customer", "input"],
    ["category", "Category", "input"],
    ["flag", "Flag", "input"],
    ["sentiment", "Sentiment", ["", "positive", "neutral", "negative"]],
    ["status", "Status", ["", "ok", "empty", "failed"]],
    ["callback_status", "Callback", ["", "pending", "kept", "overdue", "unverifiable", "any", "none"]],
    ["time_from", "From", "date"],
    ["time_to", "To", "date"],
  ];

  function queryOf(hashQuery) {
    const params = new URLSearchParams(hashQuery || "");
    for (const [k, v] of [...params.entries()]) if (!v) params.delete(k);
    return params;
  }

  async function callsView(hashQuery) {
    const params = queryOf(hashQuery);
    const form = h("form", { class: "filters" },
      FILTERS.map(([name, label, kind]) => h("label", {}, label,
        Array.isArray(kind)
          ? h("select", { name }, kind.map((v) => h("option", { value: v, selected: params.get(name) === v }, v || "any")))
          : h("input", { name, type: kind === "date" ? "date" : "search", value: params.get(name) || "" }))),
      h("button", { type: "submit" }, "Apply"),
      h("button", { type: "button", class: "ghost", onclick: () => exportCsv(params) }, "Export CSV"),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      for (const [k, v] of new FormData(form).entries()) if (v) next.set(k, v);
      location.hash = `#/calls?${next}`;
    });
    const table = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    setView(section("Calls", form, table));
    const page = Number(params.get("page") || 1);
    params.set("page", page);
    params.set("page_size", 25);
    const data = await api(`calls?${params}`);
    const rows = data.items.map((c) => h("tr", { "data-record": c.record_id },
      h("td", {}, h("a", { href: `#/calls/${c.record_id}` }, c.file_name || c.record_id)),
      h("td", {}, when(c.call_time || c.created_at)),
      h("td", {}, c.agent_id || "–"), h("td", {}, c.customer_id || c.customer_phone || "–"),
      h("td", {}, seconds(c.duration_s)), h("td", {}, c.category || "–"),
      h("td", {}, sentimentBadge(c.customer_sentiment)),
      h("td", {}, (c.flags || []).map((f) => badge(f, "flag"))),
      h("td", {}, c.callback_status || "–"), h("td", {}, statusBadge(c.status)),
    ));
    const nav = (p) => { const q = new URLSearchParams(params); q.set("page", p); q.delete("page_size"); return `#/calls?${q}`; };
    table.replaceChildren(
      h("p", { class: "muted" }, `${data.total} call(s)`),
      h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Recording", "Time", "Agent", "Customer", "Length", "Category", "Customer sentiment", "Flags", "Callback", "Status"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows)),
      h("p", { class: "pager" },
        page > 1 ? h("a", { href: nav(page - 1) }, "← previous") : "",
        ` page ${data.page} of ${data.pages} `,
        page < data.pages ? h("a", { href: nav(page + 1) }, "next →") : ""),
    );
  }

  async function exportCsv(params) {
    const q = new URLSearchParams(params);
    q.delete("page"); q.delete("page_size");
    const response = await fetch(`${BASE}calls/export?${q}`, { headers: headers() });
    if (!response.ok) { say(`Export failed (HTTP ${response.status})`, "error"); return; }
    const url = URL.createObjectURL(await response.blob());
    const a = h("a", { href: url, download: "calls.csv" });
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  /* ------------------------------------------------------------------ call page */

  async function audioSource(callId) {
    // Without a key the browser streams (and seeks) directly; with one, fetch with the header.
    if (!apiKey()) return `${BASE}calls/${encodeURIComponent(callId)}/audio`;
    const response = await fetch(`${BASE}calls/${encodeURIComponent(callId)}/audio`, { headers: headers() });
    return response.ok ? URL.createObjectURL(await response.blob()) : null;
  }

  function sentimentChart(analysis, duration) {
    const s = analysis && analysis.sentiment;
    if (!s) return h("p", { class: "muted" }, "No sentiment yet: the call has not been analysed.");
    const place = { start: 1 / 6, middle: 1 / 2, end: 5 / 6, overall: 1 / 2 };
    const series = ["customer", "agent"].filter((r) => s[r]).map((role) => ({
      name: role, cls: `role-${role}`,
      points: (s[role].trajectory || []).filter((p) => p.phase !== "overall").map((p) => ({
        x: p.evidence && p.evidence.time_s !== null && p.evidence.time_s !== undefined ? p.evidence.time_s : place[p.phase] * duration,
        y: p.score, tip: `${role}, ${p.phase}: ${p.label} (${p.score.toFixed(2)})${p.evidence ? ` – "${p.evidence.quote}"` : ""}`,
      })).sort((a, b) => a.x - b.x),
    }));
    return h("div", {},
      Charts.line(series, {
        title: "sentiment over the call", yMin: -1, yMax: 1, xMin: 0, xMax: duration || 1, zeroLine: true,
        yTicks: [{ v: -1, label: "neg" }, { v: 0, label: "0" }, { v: 1, label: "pos" }],
        xLabel: (x) => Charts.clock(x), xTicks: [0, duration / 2, duration],
      }),
      h("p", { class: "muted" }, `Customer overall: ${s.customer ? s.customer.label : "–"} · agent overall: ${s.agent ? s.agent.label : "–"}`));
  }

  function evidenceList(items, seek) {
    if (!items || !items.length) return null;
    return h("ul", { class: "evidence" }, items.map((e) => h("li", {},
      e.time_s !== null && e.time_s !== undefined ? h("a", { href: "#", class: "time", onclick: (ev) => { ev.preventDefault(); seek(e.time_s); } }, Charts.clock(e.time_s)) : "",
      ` “${e.quote}”`)));
  }

  function complianceList(doc, seek) {
    const items = (doc.analysis && doc.analysis.compliance) || [];
    if (!items.length) {
      const flat = doc.compliance || [];
      if (!flat.length) return h("p", { class: "muted" }, "No compliance checks yet.");
      return h("ul", { class: "checklist" }, flat.map((c) => h("li", { class: `check-${c.passed === true ? "pass" : c.passed === false ? "fail" : "na"}` }, c.item)));
    }
    return h("ul", { class: "checklist" }, items.map((c) => h("li", { class: `check-${c.status === "pass" ? "pass" : c.status === "fail" ? "fail" : "na"}`, "data-item": c.id },
      h("strong", {}, c.description || c.id), " ", badge(c.status.replace("_", " "), `check-badge-${c.status}`),
      c.reason ? h("div", { class: "muted" }, c.reason) : "",
      evidenceList(c.evidence, seek))));
  }

  function callbackBox(doc, seek) {
    const cb = (doc.analysis && doc.analysis.callback) || {};
    if (!cb.promised && !doc.callback_due) return h("p", { class: "muted" }, "No callback promised.");
    // The rubric's window: "tomorrow" is due 10:00 but kept by a call until 18:00 (plus the grace hours).
    const due = doc.callback_due || cb.due;
    const end = doc.callback_window_end || cb.window_end;
    return h("div", {},
      h("p", {}, "Promised", cb.by ? ` by ${cb.by}` : "", cb.due_text ? ` (“${cb.due_text}”)` : "",
        due ? `, due ${when(due)}` : ", no time said: pending until a follow-up call",
        end && end !== due ? `, kept by a call until ${when(end)} (+ grace)` : ""),
      h("p", {}, "Status: ", badge(doc.callback_status || cb.status || "pending", `cb-${doc.callback_status || cb.status}`),
        doc.callback_kept_at ? ` · kept ${when(doc.callback_kept_at)}` : ""),
      evidenceList(cb.evidence, seek));
  }

  function flagsBox(doc) {
    const rich = (doc.analysis && doc.analysis.flags) || [];
    if (rich.length) return h("ul", { class: "flags" }, rich.map((f) => h("li", {}, badge(f.name, `flag sev-${f.severity}`), ` ${f.reason}`)));
    const flat = doc.flags || [];
    return flat.length ? h("p", {}, flat.map((f) => badge(f, "flag"))) : h("p", { class: "muted" }, "No review flags.");
  }

  function metricsBox(m) {
    if (!m) return h("p", { class: "muted" }, "No metrics.");
    const roles = Object.entries(m.per_role || {});
    return h("dl", { class: "metrics" },
      h("dt", {}, "Duration"), h("dd", {}, seconds(m.duration_s)),
      h("dt", {}, "Silence"), h("dd", {}, `${pct(m.non_talk_ratio)} (longest ${Charts.fmt(m.longest_silence_s, 1)} s)`),
      h("dt", {}, "Overtalk"), h("dd", {}, `${Charts.fmt(m.overtalk_seconds, 1)} s, ${m.interruptions} interruption(s)`),
      roles.map(([role, r]) => [h("dt", {}, `${role} talk`), h("dd", {}, `${pct(r.talk_ratio)} · ${Math.round(r.words_per_minute)} wpm · ${r.turns} turns`)]),
    );
  }

  /* Reviewer corrections: category, sub-category, sentiments, callback; POST calls/{id}/correction. */

  let taxonomyCache = null;

  async function taxonomy() {
    if (!taxonomyCache) taxonomyCache = await api("taxonomy");
    return taxonomyCache;
  }

  function reviewBox(doc, callId) {
    const review = doc.analysis && doc.analysis.review;
    const fields = review && review.fields && review.fields.length ? ` (${review.fields.join(", ").replace(/_/g, " ")})` : "";
    const form = h("form", { class: "correction" }, h("p", { class: "muted" }, "Loading the categories…"));
    taxonomy()
      .then((tax) => fillCorrectionForm(form, tax, doc, callId))
      .catch((err) => form.replaceChildren(h("p", { class: "error" }, err.message)));
    return h("div", { class: "review" },
      review
        ? h("p", { class: "reviewed", id: "call-review" }, `Reviewed by ${review.reviewer || "an unnamed reviewer"} at ${when(review.at)}${fields}`)
        : h("p", { class: "muted", id: "call-review" }, "Not reviewed yet."),
      form);
  }

  function options(values, selected, empty) {
    return [h("option", { value: "" }, empty), ...values.map((v) => h("option", { value: v, selected: v === selected }, v))];
  }

  function fillCorrectionForm(form, tax, doc, callId) {
    const a = doc.analysis || {};
    const now = {
      category: a.category || "", subcategory: a.subcategory || "",
      customer: doc.customer_sentiment || "", agent: doc.agent_sentiment || "",
      callback: Boolean(a.callback && a.callback.promised),
    };
    const subsOf = (name) => ((tax.categories.find((c) => c.name === name) || {}).subcategories || []);
    const category = h("select", { name: "category" }, options(tax.categories.map((c) => c.name), now.category, "– choose –"));
    const subcategory = h("select", { name: "subcategory" });
    const fillSubs = (selected) => {
      const subs = subsOf(category.value);
      subcategory.replaceChildren(...options(subs, selected, subs.length ? "– choose –" : "none"));
      subcategory.disabled = !subs.length;
    };
    fillSubs(now.subcategory);
    category.addEventListener("change", () => fillSubs(""));
    const customer = h("select", { name: "customer_sentiment" }, options(tax.sentiments, now.customer, "–"));
    const agent = h("select", { name: "agent_sentiment" }, options(tax.sentiments, now.agent, "–"));
    const callback = h("input", { type: "checkbox", name: "callback_promised", checked: now.callback });
    const reviewer = h("input", { name: "reviewer", maxlength: 200, placeholder: "your name", value: localStorage.getItem("callaudit.reviewer") || "" });
    const status = h("p", { class: "correction-status", role: "status" });
    form.replaceChildren(
      h("label", {}, "Category", category),
      h("label", {}, "Sub-category", subcategory),
      h("label", {}, "Customer sentiment", customer),
      h("label", {}, "Agent sentiment", agent),
      h("label", { class: "check" }, callback, "Callback promised"),
      h("label", {}, "Reviewer", reviewer),
      h("button", { type: "submit" }, "Save correction"),
      status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      if (customer.value && customer.value !== now.customer) body.customer_sentiment = customer.value;
      if (agent.value && agent.value !== now.agent) body.agent_sentiment = agent.value;
      if (callback.checked !== now.callback) body.callback_promised = callback.checked;
      const categoryChanged = category.value !== now.category || subcategory.value !== now.subcategory;
      // The category goes when changed, or alone as a confirmation that the machine's label is right.
      if (category.value && (categoryChanged || !Object.keys(body).length)) {
        body.category = category.value;
        body.subcategory = subcategory.value || null;
      }
      if (!Object.keys(body).length) {
        status.className = "correction-status error";
        status.textContent = "Choose a category or change a label first.";
        return;
      }
      const name = reviewer.value.trim();
      if (name) { body.reviewer = name; localStorage.setItem("callaudit.reviewer", name); }
      status.className = "correction-status muted";
      status.textContent = "Saving…";
      try {
        const updated = await api(`calls/${encodeURIComponent(callId)}/correction`, {
          method: "POST",
          headers: Object.assign({ "Content-Type": "application/json" }, headers()),
          body: JSON.stringify(body),
        });
        say("Correction saved: it applies to this call and teaches the classifier.", "info");
        await callView(callId, updated);
      } catch (err) {
        status.className = "correction-status error";
        status.textContent = err.message;
      }
    });
  }

  async function callView(callId, loaded) {
    if (!loaded) setView(h("p", { class: "muted" }, "Loading…"));
    const doc = loaded || await api(`calls/${encodeURIComponent(callId)}`);
    const a = doc.analysis || null;
    const duration = (doc.metrics && doc.metrics.duration_s) || (doc.audio && doc.audio.duration_s) || 0;
    const audio = h("audio", { controls: true, preload: "metadata", class: "player" });
    audioSource(callId).then((src) => { if (src) audio.src = src; else audio.replaceWith(h("p", { class: "muted" }, "The audio of this call is not kept on this server.")); });
    const seek = (t) => { audio.currentTime = Math.max(0, t - 0.2); audio.play().catch(() => {}); };
    const turns = doc.turns || [];
    const transcript = h("ol", { class: "transcript" }, turns.map((t) => h("li", { class: `turn role-${t.role}`, "data-start": t.start, "data-end": t.end },
      h("a", { href: "#", class: "time", onclick: (e) => { e.preventDefault(); seek(t.start); } }, Charts.clock(t.start)),
      h("span", { class: "speaker" }, t.role),
      h("span", { class: "text" }, t.text))));
    if (!turns.length) transcript.appendChild(h("li", { class: "muted" }, doc.status === "failed" ? "No transcript: the call failed." : "Nobody spoke in this call."));
    audio.addEventListener("timeupdate", () => {
      for (const li of transcript.children) {
        const on = audio.currentTime >= Number(li.dataset.start) && audio.currentTime < Number(li.dataset.end);
        li.classList.toggle("playing", on);
      }
    });
    const roles = [...new Set(turns.map((t) => t.role))].sort();
    const reanalyse = h("button", { type: "button", class: "ghost", onclick: async () => {
      try {
        const task = await api(`calls/${encodeURIComponent(callId)}/reanalyse`, { method: "POST" });
        say(`Re-analysis queued (job ${task.job_id}).`, "info");
      } catch (err) { say(err.message, "error"); }
    } }, "Re-analyse");
    const meta = doc.metadata || {};
    setView(
      h("div", { class: "call-head card" },
        h("h1", {}, doc.file_name || callId, " ", statusBadge(doc.status)),
        h("p", { class: "facts" },
          h("span", {}, "Category: ", h("strong", { id: "call-category" }, a && a.category ? `${a.category}${a.subcategory ? ` / ${a.subcategory}` : ""}` : "not analysed"),
            // A follow-up takes the earlier call's label (the taxonomy's follow_ups rules): say which call.
            a && a.follow_up_of ? h("span", { id: "call-follow-up" }, " · follow-up of ", h("a", { href: `#/calls/${a.follow_up_of}` }, "an earlier call")) : ""),
          h("span", {}, `Agent: ${meta.agent_id || "–"}`), h("span", {}, `Customer: ${meta.customer_id || meta.customer_phone || "–"}`),
          h("span", {}, `Time: ${when(meta.call_time)}`), h("span", {}, `Length: ${seconds(duration)}`),
          h("span", {}, `Language: ${doc.language || "–"}`), h("span", {}, `${doc.mode} · ${doc.diarization}`),
          h("span", {}, `Analysis: ${String(doc.analysis_status || "–").replace("_", " ")}`)),
        a && a.summary ? h("p", { class: "summary" }, a.summary) : "",
        audio, reanalyse,
        (doc.errors || []).length ? h("ul", { class: "errors" }, doc.errors.map((e) => h("li", {}, `${e.stage}: ${e.message}`))) : ""),
      h("div", { class: "grid call" },
        section("Transcript", Charts.timeline(turns, duration, roles.length ? roles : ["agent", "customer"], (t) => seek(t.start)), transcript),
        h("div", {},
          section("Review", reviewBox(doc, callId)),
          section("Sentiment over the call", sentimentChart(a, duration)),
          section("Compliance", complianceList(doc, seek)),
          section("Callback", callbackBox(doc, seek)),
          section("Flags", flagsBox(doc)),
          section("Metrics", metricsBox(doc.metrics)))),
    );
  }

  /* ------------------------------------------------------------------ dashboard */

  async function dashboardView() {
    setView(h("p", { class: "muted" }, "Loading…"));
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    const s = await api(`stats?timezone=${encodeURIComponent(zone)}`);
    const o = s.overview;
    const tiles = h("div", { class: "tiles" },
      tile("Calls", o.calls), tile("OK", o.by_status.ok || 0), tile("Empty", o.by_status.empty || 0), tile("Failed", o.by_status.failed || 0),
      tile("Flagged", Object.values(o.flags).reduce((x, y) => x + y, 0)), tile("Overdue callbacks", o.overdue_callbacks));
    const cats = s.categories.map((c) => ({ label: c.category || "not categorised", value: c.calls, note: `${c.calls} (${pct(c.share)})` }));
    const daily = s.daily;
    const scorecards = h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Agent", "Calls", "Avg customer sentiment", "Compliance pass", "Talk ratio", "Flagged", "Callbacks kept / promised", "Overdue"].map((t) => h("th", {}, t)))),
      h("tbody", {}, s.agents.map((g) => h("tr", {},
        h("td", {}, g.agent_id ? h("a", { href: `#/calls?agent_id=${encodeURIComponent(g.agent_id)}` }, g.agent_id) : "unknown"),
        h("td", {}, g.calls), h("td", {}, Charts.fmt(g.avg_sentiment, 2)), h("td", {}, pct(g.compliance_pass_rate)),
        h("td", {}, pct(g.talk_ratio)), h("td", {}, g.flagged_calls),
        h("td", {}, `${g.callbacks_kept} / ${g.callbacks_promised}`), h("td", {}, g.callbacks_overdue)))));
    const dayIndex = (i) => (daily[i] ? daily[i].day.slice(5) : "");
    setView(
      tiles,
      h("div", { class: "grid two" },
        section("Categories", Charts.hbar(cats, { title: "calls per category" })),
        section("Calls per day", Charts.columns(daily.map((d) => ({ label: d.day, short: d.day.slice(5), value: d.calls })), { title: "calls per day" }))),
      h("div", { class: "grid two" },
        section("Customer sentiment per day", Charts.line([{ name: "avg sentiment", cls: "role-customer", points: daily.map((d, i) => ({ x: i, y: d.avg_sentiment, tip: `${d.day}: ${Charts.fmt(d.avg_sentiment, 2)}` })) }],
          { title: "average customer sentiment per day", yMin: -1, yMax: 1, zeroLine: true, xMin: 0, xMax: Math.max(1, daily.length - 1), xLabel: (x) => dayIndex(Math.round(x)), xTicks: ticks(daily.length), yTicks: [{ v: -1, label: "-1" }, { v: 0, label: "0" }, { v: 1, label: "+1" }] })),
        section("Compliance pass rate per day", Charts.line([{ name: "pass rate", cls: "role-agent", points: daily.map((d, i) => ({ x: i, y: d.compliance_pass_rate, tip: `${d.day}: ${pct(d.compliance_pass_rate)}` })) }],
          { title: "compliance pass rate per day", yMin: 0, yMax: 1, xMin: 0, xMax: Math.max(1, daily.length - 1), xLabel: (x) => dayIndex(Math.round(x)), xTicks: ticks(daily.length), yTicks: [{ v: 0, label: "0%" }, { v: 0.5, label: "50%" }, { v: 1, label: "100%" }] }))),
      section("Agent scorecards", scorecards),
    );
  }

  function ticks(n) {
    if (n <= 1) return [0];
    const step = Math.max(1, Math.ceil((n - 1) / 6));
    const out = [];
    for (let i = 0; i < n; i += step) out.push(i);
    return out;
  }

  function tile(label, value) {
    return h("div", { class: "tile" }, h("div", { class: "tile-value" }, String(value)), h("div", { class: "tile-label" }, label));
  }

  /* ------------------------------------------------------------------ routing */

  async function route() {
    stopPolling();
    const hash = location.hash.replace(/^#\/?/, "");
    const [path, query] = hash.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    const name = parts[0] || "upload";
    for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === name);
    try {
      if (name === "jobs" && parts[1]) jobView(parts[1]);
      else if (name === "jobs") await jobsView();
      else if (name === "calls" && parts[1]) await callView(parts[1]);
      else if (name === "calls") await callsView(query);
      else if (name === "dashboard") await dashboardView();
      else uploadView();
    } catch (err) {
      setView(section("Something went wrong", h("p", { class: "error" }, err.message || String(err))));
    }
  }

  window.addEventListener("hashchange", route);
  route();
})();
