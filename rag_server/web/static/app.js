// The page's whole script: no framework, no build step. Every piece of server data is put on the
// page with textContent (never innerHTML), so a document's text can never become markup.
"use strict";

const KEY = "rag.key";
const HISTORY = "rag.questions";
const PAGE_SIZE = 20;
const STATUS = {
  answered: "Answered from the documents",
  extractive: "Quoted from the sources",
  insufficient_evidence: "No evidence in the documents",
};
const $ = (id) => document.getElementById(id);
const state = { me: null, answer: null, docsOffset: 0, docsTotal: 0, view: "signin" };

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

// ---- API calls: the key goes in the Authorization header, never in a URL ----
class ApiError extends Error {}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  const response = await fetch(path, { ...options, headers, credentials: "omit" });
  if (response.status === 401) { signOut("Your key was not accepted. Sign in again."); throw new ApiError("signed out"); }
  if (!response.ok) throw new ApiError(await problem(response));
  return response;
}

async function problem(response) {
  try { const body = await response.json(); return body.detail || body.title || response.statusText; }
  catch { return response.status + " " + response.statusText; }
}

function docPath(prefix, documentId, collection) {
  const id = documentId.split("/").map(encodeURIComponent).join("/");
  return prefix + id + "?collection=" + encodeURIComponent(collection);
}

// ---- views ----
function show(view) {
  state.view = view;
  for (const name of ["signin", "ask", "doc", "docs"]) $("view-" + name).hidden = name !== view;
  $("nav-ask").setAttribute("aria-current", view === "ask" || view === "doc" ? "page" : "false");
  $("nav-docs").setAttribute("aria-current", view === "docs" ? "page" : "false");
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  const me = await (await api("/v1/me")).json();
  state.me = me;
  $("who").textContent = "Signed in as " + me.key_id + " (" + me.role + ")";
  for (const id of ["nav", "who", "sign-out"]) $(id).hidden = false;
  const select = $("collection");
  select.replaceChildren(...me.collections.map((name) => el("option", name)));
  select.value = me.collections.includes(me.default_collection) ? me.default_collection : me.collections[0];
  $("upload").hidden = me.role !== "admin";
  renderHistory();
  show("ask");
  $("question").focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  state.me = null;
  for (const id of ["nav", "who", "sign-out"]) $(id).hidden = true;
  $("signin-error").textContent = message || "";
  show("signin");
  $("api-key").value = "";
  $("api-key").focus();
}

// ---- asking: POST /v1/ask as server-sent events, read from the fetch body ----
async function ask(question, collection) {
  rememberQuestion(question);
  resetAnswer();
  state.answerCollection = collection;
  $("result").setAttribute("aria-busy", "true");
  $("status").textContent = "Searching the documents…";
  $("ask-button").disabled = true;
  try {
    const response = await api("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ question, collection, stream: true }),
    });
    await readEvents(response, onEvent);
  } catch (error) {
    if (!(error instanceof ApiError && error.message === "signed out")) {
      $("status").textContent = "The question could not be answered: " + error.message;
      $("status").className = "status error";
    }
  } finally {
    $("result").setAttribute("aria-busy", "false");
    $("ask-button").disabled = false;
  }
}

async function readEvents(response, handle) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) handle(event, JSON.parse(data.join("\n")));
    }
  }
}

function onEvent(event, data) {
  if (event === "sources") {
    $("status").textContent = "Found " + data.length + " passages; writing and checking the answer…";
  } else if (event === "token") {
    $("draft").hidden = false;
    $("draft-text").textContent += data.text;
  } else if (event === "final") {
    showAnswer(data);
  } else if (event === "error") {
    $("status").textContent = "The question could not be answered: " + (data.detail || data.title);
    $("status").className = "status error";
  }
}

function resetAnswer() {
  state.answer = null;
  $("status").className = "status";
  $("draft").hidden = true;
  $("draft-text").textContent = "";
  $("answer").textContent = "";
  $("read-as").hidden = true;
  $("citations").replaceChildren();
  $("related").replaceChildren();
  $("citations-box").hidden = true;
  $("related-box").hidden = true;
  $("copy").hidden = true;
  $("copy-note").textContent = "";
}

function showAnswer(answer) {
  state.answer = answer;
  $("draft").hidden = true;
  const refused = answer.status === "insufficient_evidence";
  $("status").textContent = STATUS[answer.status] || answer.status;
  $("status").className = "status " + (refused ? "refused" : "ok");
  if (answer.finish_reason === "deadline") $("status").textContent += " (cut short by the time limit)";
  // What was searched for, where it differs from what was typed (misspellings read as the
  // documents' words): a person sees which question the answer is to.
  $("read-as").textContent = answer.read_as ? "Searched for: " + answer.read_as : "";
  $("read-as").hidden = !answer.read_as;
  // A refusal's text says there is no answer; its passages are shown apart, never as an answer.
  $("answer").textContent = answer.answer;
  $("citations").replaceChildren(...answer.citations.map((c) => card(c, "[" + c.n + "]")));
  $("related").replaceChildren(...answer.related.map((c) => card(c, "")));
  $("citations-box").hidden = answer.citations.length === 0;
  $("related-box").hidden = answer.related.length === 0;
  $("copy").hidden = refused;
}

function where(passage) {
  const parts = [];
  if (passage.section) parts.push(passage.section);
  if (passage.page) parts.push("page " + passage.page);
  return parts.join(" · ");
}

function card(passage, label) {
  const item = el("li");
  const button = el("button", null, "card");
  button.type = "button";
  const head = el("span", null, "card-head");
  if (label) head.append(el("span", label, "n"));
  head.append(el("span", passage.title, "title"));
  button.append(head, el("span", where(passage), "where"), el("q", passage.quote, "quote"));
  button.addEventListener("click", () => openDocument(passage, state.answerCollection));
  item.append(button);
  return item;
}

// ---- the document view: the quote highlighted in its text ----
async function openDocument(passage, collection) {
  const doc = await (await api(docPath("/v1/document-text/", passage.document_id, collection))).json();
  $("doc-title").textContent = doc.title;
  $("doc-meta").textContent = [doc.source, where(passage)].filter(Boolean).join(" · ");
  const text = doc.text;
  const quoted = passage.end > passage.start;
  const mark = el("mark", text.slice(passage.start, passage.end));
  mark.id = "quote";
  mark.tabIndex = -1;
  $("doc-text").replaceChildren(
    ...(quoted ? [text.slice(0, passage.start), mark, text.slice(passage.end)] : [text]),
  );
  const link = $("doc-file");
  link.hidden = !doc.has_file;
  link.onclick = doc.has_file ? (event) => { event.preventDefault(); openOriginal(doc, passage.page, collection); } : null;
  link.textContent = passage.page ? "Open the original file at page " + passage.page : "Open the original file";
  state.back = state.view;
  $("doc-back").textContent = state.back === "docs" ? "Back to the documents" : "Back to the answer";
  show("doc");
  if (quoted) {
    mark.scrollIntoView({ block: "center" });
    mark.focus({ preventScroll: true });
  } else {
    $("doc-text").scrollTop = 0;
    $("doc-title").focus();
  }
}

async function openOriginal(doc, page, collection) {
  // Fetched with the key (a link cannot carry it); a PDF opens at its page. Anything else is
  // shown as plain text, so an uploaded HTML file never runs as this page's origin.
  const response = await api(docPath("/v1/document-file/", doc.document_id, collection));
  const blob = await response.blob();
  const pdf = blob.type === "application/pdf";
  const typed = new Blob([blob], { type: pdf ? "application/pdf" : "text/plain;charset=utf-8" });
  const url = URL.createObjectURL(typed) + (pdf && page ? "#page=" + page : "");
  window.open(url, "_blank", "noopener");
}

// ---- copy, and the questions of this session ----
function answerAsText(answer) {
  const lines = [answer.answer, "", "Sources:"];
  for (const c of answer.citations) lines.push("[" + c.n + "] " + [c.title, where(c)].filter(Boolean).join(", ") + ": “" + c.quote + "”");
  return lines.join("\n");
}

async function copyAnswer() {
  const text = answerAsText(state.answer);
  try {
    await navigator.clipboard.writeText(text);
    $("copy-note").textContent = "Copied.";
  } catch {
    $("copy-note").textContent = "Copying is not allowed here; select the answer and copy it by hand.";
  }
}

function questions() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY)) || []; } catch { return []; }
}

function rememberQuestion(question) {
  const list = [question, ...questions().filter((q) => q !== question)].slice(0, 20);
  sessionStorage.setItem(HISTORY, JSON.stringify(list));
  renderHistory();
}

function renderHistory() {
  $("history").replaceChildren(...questions().map((q) => {
    const button = el("button", q, "link");
    button.type = "button";
    button.addEventListener("click", () => { $("question").value = q; $("question").focus(); });
    const item = el("li");
    item.append(button);
    return item;
  }));
}

// ---- documents: list, search, paging; upload and delete for admins ----
async function loadDocuments() {
  $("docs-error").textContent = "";
  const params = new URLSearchParams({ offset: state.docsOffset, limit: PAGE_SIZE, collection: $("collection").value });
  const q = $("docs-q").value.trim();
  if (q) params.set("contains", q);
  let list;
  try { list = await (await api("/v1/documents/?" + params)).json(); }
  catch (error) { $("docs-error").textContent = error.message; return; }
  state.docsTotal = list.total;
  $("docs-caption").textContent = "Documents you may read in the collection " + params.get("collection");
  const admin = state.me && state.me.role === "admin";
  const head = $("docs-table").tHead.rows[0];
  if (admin && head.cells.length === 5) head.append(el("th", "Actions"));
  $("docs-body").replaceChildren(...list.documents.map((d) => documentRow(d, admin)));
  const last = Math.min(list.offset + list.documents.length, list.total);
  $("docs-range").textContent = list.total ? (list.offset + 1) + "–" + last + " of " + list.total : "No documents";
  $("docs-prev").disabled = state.docsOffset === 0;
  $("docs-next").disabled = last >= list.total;
}

function documentRow(d, admin) {
  const row = el("tr");
  const open = el("button", d.title, "link");
  open.type = "button";
  open.addEventListener("click", () => openDocument({ document_id: d.document_id, start: 0, end: 0 }, $("collection").value));
  const title = el("td");
  title.append(open);
  const cells = [["Name", d.document_id], ["Pages", d.pages ?? "–"],
    ["Groups", d.groups.length ? d.groups.join(", ") : "everyone"], ["Added", d.ingested_at.slice(0, 10)]];
  row.append(title, ...cells.map(([label, value]) => {
    const cell = el("td", value);
    cell.dataset.label = label; // shown before the value on narrow screens
    return cell;
  }));
  if (admin) {
    const button = el("button", "Delete", "danger");
    button.type = "button";
    button.setAttribute("aria-label", "Delete " + d.title);
    button.addEventListener("click", () => confirmDelete(d));
    const cell = el("td");
    cell.append(button);
    row.append(cell);
  }
  return row;
}

function confirmDelete(d) {
  const dialog = $("confirm");
  $("confirm-text").textContent = "Delete “" + d.title + "” (" + d.document_id + ")? It can no longer be cited.";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "delete") return;
    try {
      await api(docPath("/v1/documents/", d.document_id, $("collection").value), { method: "DELETE" });
      $("docs-error").textContent = "";
      $("docs-range").textContent = "Deleted " + d.title + ".";
    } catch (error) { $("docs-error").textContent = error.message; }
    await loadDocuments();
  };
  dialog.returnValue = "";
  dialog.showModal();
}

function uploadOne(file, groups, collection, row) {
  // XMLHttpRequest, not fetch: only it reports upload progress.
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", file);
    form.append("groups", groups);
    form.append("collection", collection);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/documents/");
    xhr.setRequestHeader("Authorization", "Bearer " + sessionStorage.getItem(KEY));
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) row.progress.value = e.loaded / e.total; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: shown by status */ }
      const ok = xhr.status === 201;
      row.progress.value = 1;
      row.result.textContent = ok ? body.status + " (" + body.document.chunks + " passages)" : "rejected: " + (body.detail || xhr.status + " " + xhr.statusText);
      row.item.className = ok ? "ok" : "rejected";
      resolve();
    };
    xhr.onerror = () => { row.result.textContent = "rejected: the upload failed (network)"; row.item.className = "rejected"; resolve(); };
    xhr.send(form);
  });
}

async function uploadFiles() {
  const files = [...$("upload-files").files];
  const groups = $("upload-groups").value;
  const collection = $("collection").value;
  const rows = files.map((file) => {
    const item = el("li");
    const progress = el("progress");
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-label", "Uploading " + file.name);
    const result = el("span", "waiting…", "upload-result");
    item.append(el("span", file.name, "upload-name"), progress, result);
    return { item, progress, result };
  });
  $("upload-results").replaceChildren(...rows.map((r) => r.item));
  for (let i = 0; i < files.length; i++) await uploadOne(files[i], groups, collection, rows[i]);
  $("upload-form").reset();
  await loadDocuments();
}

// ---- wiring ----
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try { await signIn($("api-key").value.trim()); }
    catch (error) { if (!sessionStorage.getItem(KEY)) return; signOut(error.message); }
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("nav-ask").addEventListener("click", () => { show("ask"); $("question").focus(); });
  $("nav-docs").addEventListener("click", () => { state.docsOffset = 0; show("docs"); loadDocuments(); });
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (question) ask(question, $("collection").value);
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("doc-back").addEventListener("click", () => { show(state.back || "ask"); $(state.back === "docs" ? "docs-q" : "question").focus(); });
  $("collection").addEventListener("change", () => { if (state.view === "docs") { state.docsOffset = 0; loadDocuments(); } });
  $("copy").addEventListener("click", copyAnswer);
  $("docs-search").addEventListener("submit", (event) => { event.preventDefault(); state.docsOffset = 0; loadDocuments(); });
  $("docs-prev").addEventListener("click", () => { state.docsOffset = Math.max(0, state.docsOffset - PAGE_SIZE); loadDocuments(); });
  $("docs-next").addEventListener("click", () => { state.docsOffset += PAGE_SIZE; loadDocuments(); });
  $("upload-form").addEventListener("submit", (event) => { event.preventDefault(); uploadFiles(); });
  const key = sessionStorage.getItem(KEY);
  if (key) signIn(key).catch(() => signOut());
  else signOut();
});
