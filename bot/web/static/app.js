/* The companion Mini App: plain JavaScript, no build step, no CDN.
 *
 * Launch parameters are read from the URL fragment the way Telegram's own script does
 * (tgWebAppData, tgWebAppThemeParams, …) and kept in sessionStorage, since the fragment is
 * gone after an in-app reload. Every API call sends the initData as `Authorization: tma …`;
 * the server checks it and answers 401 without it, and then the page shows only the
 * "open this from the bot" notice. All user data is put into the page as text nodes,
 * never as HTML.
 */
"use strict";

const STORE_KEY = "__telegram__initParams";
const state = { initData: "", lang: "en", texts: {}, all: {}, tab: "personas", avatars: {} };

function launchParams() {
  const params = {};
  const hash = location.hash.replace(/^#/, "");
  for (const [key, value] of new URLSearchParams(hash.includes("=") ? hash : "")) params[key] = value;
  if (params.tgWebAppData) {
    try { sessionStorage.setItem(STORE_KEY, JSON.stringify(params)); } catch (e) { /* private mode */ }
    return params;
  }
  try { return JSON.parse(sessionStorage.getItem(STORE_KEY) || "{}"); } catch (e) { return {}; }
}

function postEvent(type, data) {
  /* Tell the Telegram client we are ready / want the full height (as telegram-web-app.js does). */
  const payload = JSON.stringify({ eventType: type, eventData: data || {} });
  try {
    if (window.TelegramWebviewProxy) window.TelegramWebviewProxy.postEvent(type, JSON.stringify(data || {}));
    else if (window.external && "notify" in window.external) window.external.notify(payload);
    else if (window.parent !== window) window.parent.postMessage(payload, "https://web.telegram.org");
  } catch (e) { /* outside Telegram */ }
}

function applyTheme(themeJson) {
  let theme = {};
  try { theme = JSON.parse(themeJson || "{}"); } catch (e) { return; }
  for (const [key, value] of Object.entries(theme)) {
    if (/^[a-z_]+$/.test(key) && /^#[0-9a-fA-F]{3,8}$/.test(String(value)))
      document.documentElement.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), value);
  }
}

function t(key, values) {
  let template = state.texts[key] ?? (state.all.en || {})[key] ?? key;
  for (const [name, value] of Object.entries(values || {})) template = template.split("{" + name + "}").join(String(value));
  return template;
}

function nodes(children) {
  return [children].flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child))));
}

function fill(node, ...children) {
  node.replaceChildren(...nodes(children));
  return node;
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "value") node.value = value;
    else if (key === "checked") node.checked = !!value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...nodes(children));
  return node;
}

function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 2600);
}

class Refused extends Error {}

async function api(method, path, body) {
  const response = await fetch("/app/api/" + path, {
    method, cache: "no-store", credentials: "omit",
    headers: Object.assign({ Authorization: "tma " + state.initData }, body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401 || response.status === 403) {
    gate(response.status === 403 ? "not_allowed" : "gate");
    throw new Refused(String(response.status));
  }
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) {
    toast(data.detail || t("failed"));
    throw new Error(data.error || String(response.status));
  }
  return data;
}

function gate(key) {
  document.getElementById("shell").hidden = true;
  document.getElementById("view").replaceChildren();
  document.getElementById("gate").hidden = false;
  document.getElementById("gate-text").textContent = t(key);
  document.getElementById("gate-hint").textContent = key === "gate" ? t("gate_hint") : "";
}

function date(iso) { return (iso || "").slice(0, 10); }

function when(iso) { return (iso || "").slice(0, 16).replace("T", " "); }

// -- pages ----------------------------------------------------------------------------------
const PAGES = {
  personas: renderPersonas, memory: renderMemory, lore: renderLore,
  documents: renderDocuments, history: renderHistory, settings: renderSettings,
};

async function show(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("#tabs button"))
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  const view = document.getElementById("view");
  view.replaceChildren(h("p", { class: "empty" }, t("loading")));
  try {
    const content = await PAGES[tab]();
    fill(view, content);
    view.dataset.page = tab;
  } catch (error) {
    if (!(error instanceof Refused)) view.replaceChildren(h("p", { class: "empty" }, t("failed")));
  }
}

async function avatar(persona) {
  const initial = h("div", { class: "avatar", "aria-hidden": "true" }, (persona.name || "?").slice(0, 1));
  if (!persona.has_avatar) return initial;
  try {
    if (!state.avatars[persona.id]) {
      const blob = await api("GET", "personas/" + encodeURIComponent(persona.id) + "/avatar");
      state.avatars[persona.id] = URL.createObjectURL(blob);
    }
    return h("img", { class: "avatar", src: state.avatars[persona.id], alt: "" });
  } catch (e) { return initial; }
}

async function renderPersonas() {
  const data = await api("GET", "personas");
  const cards = await Promise.all(data.personas.map(async (persona) => h("article", {
    class: "card persona" + (persona.current ? " current" : ""), "data-persona": persona.id },
  h("div", { class: "row" }, await avatar(persona), h("div", { class: "grow" },
    h("div", { class: "name" }, persona.name,
      persona.current ? h("span", { class: "badge" }, t("current")) : null,
      persona.private ? h("span", { class: "badge" }, t("private")) : null),
    h("div", { class: "desc clamp" }, persona.description || persona.summary))),
  persona.starters.length ? h("div", {}, h("div", { class: "meta" }, t("starters")),
    h("div", { class: "starters" }, persona.starters.map((s) => h("span", { class: "chip" }, s)))) : null,
  persona.current ? null : h("div", { class: "actions" }, h("button", { class: "primary choose", onclick: async () => {
    const switched = await api("POST", "personas/" + encodeURIComponent(persona.id) + "/choose");
    toast(switched.notice || t("chosen", { name: persona.name }));
    show("personas");
  } }, t("choose"))))));
  return h("div", { class: "gallery" }, cards);
}

async function renderMemory() {
  const data = await api("GET", "memory");
  const input = h("textarea", { id: "new-fact", placeholder: t("fact_placeholder"), maxlength: "500" });
  const facts = data.facts.map((fact) => factCard(fact));
  const me = data.me;
  const meName = h("input", { type: "text", id: "me-name", value: me.name, maxlength: "64" });
  const meDescription = h("textarea", { id: "me-description", maxlength: "1000" }, me.description);
  return [
    h("h2", {}, t("facts_title", { name: data.persona_name })),
    facts.length ? h("div", { id: "facts" }, facts) : h("p", { class: "empty" }, t("facts_empty", { name: data.persona_name })),
    h("div", { class: "card" }, input, h("div", { class: "actions" }, h("button", { class: "primary", id: "add-fact", onclick: async () => {
      if (!input.value.trim()) return;
      toast((await api("POST", "memory/facts", { text: input.value })).notice || t("saved"));
      show("memory");
    } }, t("add")))),
    h("h2", {}, t("me_title")),
    h("div", { class: "card" }, h("label", { for: "me-name" }, t("me_name")), meName,
      h("label", { for: "me-description" }, t("me_description")), meDescription,
      h("div", { class: "actions" }, h("button", { class: "primary", id: "save-me", onclick: async () => {
        await api("PUT", "memory/me", { name: meName.value, description: meDescription.value });
        toast(t("saved"));
      } }, t("save")))),
    h("h2", {}, t("summaries_title")),
    data.summaries.length ? data.summaries.map((s) => h("div", { class: "card" },
      h("div", { class: "meta" }, date(s.from) + " – " + date(s.to)), h("div", { class: "desc" }, s.text)))
      : h("p", { class: "empty" }, t("summaries_empty")),
  ];
}

function factCard(fact) {
  const card = h("div", { class: "card fact", "data-fact": fact.id });
  const view = () => fill(card,
    h("div", { class: "text" }, fact.text),
    h("div", { class: "meta" }, (fact.origin === "user" ? t("from_you") : t("from_model")) + " · " +
      (fact.said_at ? t("said_at", { date: date(fact.said_at) }) : date(fact.created_at))),
    fact.sources.map((s) => h("div", { class: "source" }, (s.role === "user" ? t("you") : "") + " " + when(s.at) + " — " + s.text)),
    h("div", { class: "actions" },
      h("button", { class: "plain edit", onclick: edit }, t("edit")),
      h("button", { class: "danger delete", onclick: async () => {
        await api("DELETE", "memory/facts/" + fact.id);
        toast(t("deleted"));
        show("memory");
      } }, t("delete"))));
  const edit = () => {
    const box = h("textarea", { maxlength: "500" }, fact.text);
    fill(card, box, h("div", { class: "actions" },
      h("button", { class: "plain", onclick: view }, t("cancel")),
      h("button", { class: "primary save", onclick: async () => {
        toast((await api("PUT", "memory/facts/" + fact.id, { text: box.value })).notice || t("saved"));
        show("memory");
      } }, t("save"))));
    box.focus();
  };
  view();
  return card;
}

async function renderLore() {
  const own = (await api("GET", "lorebooks")).personas;
  if (!own.length) return h("p", { class: "empty" }, t("lore_none"));
  const picked = own.some((p) => p.id === state.lorePersona) ? state.lorePersona : own[0].id;
  state.lorePersona = picked;
  const book = await api("GET", "lorebooks/" + encodeURIComponent(picked));
  const select = h("select", { id: "lore-persona", onchange: () => { state.lorePersona = select.value; show("lore"); } },
    own.map((p) => h("option", { value: p.id, selected: p.id === picked }, p.name)));
  const list = h("div", { id: "lore-entries" });
  const addEntry = (entry) => {
    const keys = h("input", { type: "text", class: "keys", value: entry.keys.join(", ") });
    const content = h("textarea", { class: "content" }, entry.content);
    const order = h("input", { type: "number", class: "order", value: String(entry.order) });
    const enabled = h("input", { type: "checkbox", class: "enabled", checked: entry.enabled });
    const constant = h("input", { type: "checkbox", class: "constant", checked: entry.constant });
    const card = h("div", { class: "card lore-entry" },
      h("label", {}, t("lore_keys")), keys, h("label", {}, t("lore_content")), content,
      h("div", { class: "lore-flags" }, h("label", { class: "inline" }, t("lore_order"), order),
        h("label", { class: "inline" }, enabled, t("lore_enabled")),
        h("label", { class: "inline" }, constant, t("lore_constant")),
        h("span", { class: "grow" }), h("button", { class: "danger", onclick: () => card.remove() }, t("delete"))));
    card.read = () => ({ keys: keys.value.split(/[,，]/).map((k) => k.trim()).filter(Boolean), content: content.value,
      order: Number(order.value) || 0, enabled: enabled.checked, constant: constant.checked });
    list.append(card);
  };
  book.entries.forEach(addEntry);
  return [
    h("label", { for: "lore-persona" }, t("lore_pick")), select,
    book.entries.length ? null : h("p", { class: "empty" }, t("lore_empty")), list,
    h("div", { class: "actions" },
      h("button", { class: "plain", onclick: () => addEntry({ keys: [], content: "", order: 100, enabled: true, constant: false }) },
        t("lore_add")),
      h("button", { class: "primary", id: "save-lore", onclick: async () => {
        await api("PUT", "lorebooks/" + encodeURIComponent(picked), { entries: [...list.children].map((c) => c.read()) });
        toast(t("saved"));
        show("lore");
      } }, t("save"))),
  ];
}

async function renderDocuments() {
  const data = await api("GET", "documents");
  if (!data.available) return h("p", { class: "empty" }, t("docs_unavailable"));
  if (!data.documents.length) return h("p", { class: "empty" }, t("docs_empty"));
  return data.documents.map((doc) => {
    const attached = h("input", { type: "checkbox", class: "attach", checked: doc.attached, onchange: async () => {
      toast((await api("PATCH", "documents/" + doc.id, { attached: attached.checked })).notice || t("saved"));
      show("documents");
    } });
    const position = doc.chapters.length ? h("select", { class: "upto", onchange: async () => {
      toast((await api("PATCH", "documents/" + doc.id, { upto: position.value ? Number(position.value) : null })).notice
        || t("saved"));
      show("documents");
    } }, h("option", { value: "" }, t("whole_book")),
    doc.chapters.map((c) => h("option", { value: String(c.number), selected: doc.upto === c.number },
      t("as_of", { number: c.number, title: c.title })))) : null;
    return h("div", { class: "card", "data-document": doc.id },
      h("div", { class: "name" }, doc.title),
      h("div", { class: "meta" }, [doc.author, doc.format.toUpperCase(), doc.chapters.length
        ? t("chapters", { count: doc.chapters.length }) : t("no_chapters"), date(doc.added)].filter(Boolean).join(" · ")),
      h("div", { class: "lore-flags" }, h("label", { class: "inline" }, attached, t("attached"))),
      position ? h("div", {}, h("label", {}, t("reading_position")), position) : null);
  });
}

function highlighted(text, query) {
  const words = query.split(/\s+/).filter(Boolean);
  if (!words.length) return [text];
  const pattern = new RegExp("(" + words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|") + ")", "gi");
  return text.split(pattern).map((part, i) => (i % 2 ? h("mark", {}, part) : part));
}

async function renderHistory() {
  const data = await api("GET", "history");
  const results = h("div", { id: "search-results" });
  const query = h("input", { type: "search", id: "search-query", placeholder: t("search_placeholder"), value: state.query || "" });
  const run = async () => {
    state.query = query.value.trim();
    if (!state.query) { results.replaceChildren(); return; }
    const found = await api("GET", "search?q=" + encodeURIComponent(state.query));
    fill(results, (found.results.length ? found.results.map((m) => h("div", { class: "card result" },
      h("div", { class: "meta" }, m.who + " · " + when(m.at)), h("div", { class: "desc" }, highlighted(m.text, state.query))))
      : [h("p", { class: "empty" }, t("search_none", { query: state.query }))]));
  };
  const form = h("form", { class: "search", onsubmit: (event) => { event.preventDefault(); run(); } },
    query, h("button", { class: "primary", type: "submit", id: "search-button" }, t("search")));
  if (state.query) run();
  const groups = data.personas.map((group) => [h("h2", {}, group.name), group.conversations.map((c) =>
    h("div", { class: "card row", "data-conversation": c.id }, h("div", { class: "grow" },
      h("div", {}, when(c.updated), c.active ? h("span", { class: "badge" }, t("active")) : null),
      h("div", { class: "meta" }, t("messages", { count: c.messages }) + (c.last ? " · " + c.last : ""))),
    h("button", { class: "plain", onclick: () => openConversation(c.id) }, t("open")),
    h("button", { class: "plain", onclick: () => exportConversation(c.id) }, t("export"))))]);
  return [form, results, groups.length ? groups : h("p", { class: "empty" }, t("history_empty"))];
}

async function openConversation(id) {
  const data = await api("GET", "history/" + id);
  fill(document.getElementById("view"),
    h("div", { class: "actions" }, h("button", { class: "plain", onclick: () => show("history") }, "‹ " + t("back")),
      h("button", { class: "plain", onclick: () => exportConversation(id) }, t("export"))),
    data.more ? h("p", { class: "hint" }, t("more_before")) : null,
    data.messages.map((m) => h("div", { class: "bubble " + (m.role === "user" ? "user" : "assistant") },
      h("span", { class: "meta" }, m.who + " · " + when(m.at)), m.text)));
}

async function exportConversation(id) {
  const blob = await api("GET", "history/" + id + "/export");
  const link = h("a", { href: URL.createObjectURL(blob instanceof Blob ? blob : new Blob([JSON.stringify(blob, null, 2)],
    { type: "application/json" })), download: "conversation-" + id + ".json" });
  document.body.append(link);
  link.click();
  link.remove();
}

async function renderSettings() {
  const data = await api("GET", "settings");
  const save = async (changes) => {
    const updated = await api("PATCH", "settings", changes);
    toast(t("saved"));
    if ("language" in changes) await loadLanguage(updated.language === "auto" ? null : updated.language);
    show("settings");
  };
  const language = h("select", { id: "language", onchange: () => save({ language: language.value }) },
    [["auto", t("lang_auto")], ["en", "English"], ["zh", "中文"]].map(([value, label]) =>
      h("option", { value, selected: data.language === value }, label)));
  const zone = h("input", { type: "text", id: "timezone", value: data.timezone, placeholder: data.default_timezone });
  const checkins = data.checkins;
  const on = h("input", { type: "checkbox", id: "checkins", checked: checkins.enabled, disabled: !checkins.available });
  const every = h("input", { type: "number", id: "every", min: "1", value: String(checkins.every_hours ?? ""), disabled: !checkins.available });
  const quiet = h("input", { type: "text", id: "quiet", value: checkins.quiet, disabled: !checkins.available });
  const voice = h("input", { type: "checkbox", id: "voice", checked: data.voice.enabled, disabled: !data.voice.available,
    onchange: () => save({ voice: voice.checked }) });
  return [
    h("div", { class: "card" }, h("label", { for: "language" }, t("language")), language,
      h("label", { for: "timezone" }, t("timezone")), zone,
      h("div", { class: "hint", id: "timezone-now" }, t("timezone_now", { zone: data.timezone_label }) + " · " +
        t("timezone_hint", { zone: data.default_timezone })),
      h("div", { class: "actions" }, h("button", { class: "primary", id: "save-zone",
        onclick: () => save({ timezone: zone.value }) }, t("save")))),
    h("div", { class: "card" }, h("label", { class: "inline" }, on, t("checkins")),
      checkins.available ? null : h("div", { class: "hint" }, t("checkins_unavailable")),
      h("label", { for: "every" }, t("every_hours")), every, h("label", { for: "quiet" }, t("quiet_hours")), quiet,
      h("div", { class: "actions" }, h("button", { class: "primary", id: "save-checkins", disabled: !checkins.available,
        onclick: () => save({ checkins: { enabled: on.checked, every_hours: every.value ? Number(every.value) : null,
          quiet: quiet.value } }) }, t("save")))),
    h("div", { class: "card" }, h("label", { class: "inline" }, voice, t("voice")),
      data.voice.available ? null : h("div", { class: "hint" }, t("voice_unavailable"))),
  ];
}

// -- start ----------------------------------------------------------------------------------
async function loadLanguage(code) {
  state.lang = code && code.toLowerCase().startsWith("zh") ? "zh" : "en";
  state.texts = state.all[state.lang] || state.all.en || {};
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  const tabs = document.getElementById("tabs");
  fill(tabs, Object.keys(PAGES).map((tab) => h("button", { role: "tab", "data-tab": tab,
    "aria-selected": String(tab === state.tab), onclick: () => show(tab) }, t("tab_" + tab))));
}

function receiveEvents() {
  /* Telegram's clients call window.Telegram.WebView.receiveEvent (mobile, desktop) or post a
   * message (web) when something changes; a new theme is applied at once. */
  const receive = (type, data) => { if (type === "theme_changed" && data && data.theme_params)
    applyTheme(JSON.stringify(data.theme_params)); };
  window.Telegram = window.Telegram || {};
  window.Telegram.WebView = window.Telegram.WebView || { receiveEvent: receive };
  window.addEventListener("message", (event) => {
    if (!/^https:\/\/([a-z0-9-]+\.)*telegram\.org$/.test(event.origin)) return;
    try { const message = JSON.parse(event.data); receive(message.eventType, message.eventData); } catch (e) { /* not ours */ }
  });
}

async function start() {
  receiveEvents();
  const params = launchParams();
  applyTheme(params.tgWebAppThemeParams);
  state.all = await (await fetch("/app/static/texts.json")).json();
  state.initData = params.tgWebAppData || "";
  let hinted = null;
  try { hinted = JSON.parse(new URLSearchParams(state.initData).get("user") || "{}").language_code; } catch (e) { /* none */ }
  await loadLanguage(hinted || navigator.language);
  postEvent("web_app_ready");
  postEvent("web_app_expand");
  if (!state.initData) { gate("gate"); return; }
  let me;
  try { me = await api("GET", "me"); } catch (e) { if (!(e instanceof Refused)) gate("gate"); return; }
  await loadLanguage(me.lang);
  document.getElementById("gate").hidden = true;
  document.getElementById("shell").hidden = false;
  const wanted = location.hash.match(/(?:^#|&)page=(\w+)/);
  await show(wanted && PAGES[wanted[1]] ? wanted[1] : "personas");
}

start();
