// The moderator page. Comment text and author names are hostile: every value from the API
// reaches the page through textContent, never as markup.
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "moderation.token";
  const SITE_KEY = "moderation.site";
  const REFRESH_MS = 5000;

  const $ = (id) => document.getElementById(id);
  const state = { me: null, site: null, items: [], selected: -1, busy: false, timer: null };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function say(text, kind) {
    const box = $("message");
    box.textContent = text;
    box.className = "message " + (kind || "info");
    show(box, Boolean(text));
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      if (response.status === 401) signOut("Your token was not accepted. Sign in again.");
      throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
    }
    return data;
  }

  function age(iso) {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h";
    return Math.round(seconds / 86400) + " d";
  }

  function level(score) {
    if (score >= 0.8) return "high";
    if (score >= 0.5) return "mid";
    return "low";
  }

  function scoreBar(label, value) {
    const wrap = el("div", "score " + level(value));
    wrap.append(el("span", "score-label", label));
    const track = el("span", "track");
    const fill = el("span", "fill w" + Math.round(value * 20) * 5);
    track.append(fill);
    wrap.append(track, el("span", "score-value", value.toFixed(2)));
    return wrap;
  }

  function authorName(item) {
    return item.author.name || item.author.id || "anonymous";
  }

  // --- signing in and out -------------------------------------------------------------

  function signOut(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(state.timer);
    state.me = null;
    state.items = [];
    state.selected = -1;
    show($("controls"), false);
    show($("workspace"), false);
    show($("signin"), true);
    say(why || "", why ? "error" : "info");
    $("token").value = "";
    $("token").focus();
  }

  async function signIn() {
    try {
      state.me = await api("GET", "/me");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) say(error.message, "error");
      return;
    }
    $("who").textContent = state.me.id + " · " + state.me.role;
    show($("signin"), false);
    show($("controls"), true);
    show($("workspace"), true);
    say("");
    await loadSites();
    state.timer = setInterval(() => {
      if (!document.hidden && !state.busy) refresh();
    }, REFRESH_MS);
  }

  async function loadSites() {
    let sites = state.me.sites;
    if (sites === null) {
      const stats = await api("GET", "/stats");
      sites = stats.sites.map((s) => s.site_id);
    }
    const select = $("site");
    select.replaceChildren(...sites.map((s) => {
      const option = el("option", null, s);
      option.value = s;
      return option;
    }));
    const saved = sessionStorage.getItem(SITE_KEY);
    if (saved && sites.includes(saved)) select.value = saved;
    state.site = select.value || null;
    await refresh();
  }

  // --- the queue ----------------------------------------------------------------------

  async function refresh() {
    if (!state.site) {
      renderQueue();
      return;
    }
    const current = state.items[state.selected];
    const site = encodeURIComponent(state.site);
    try {
      const [page, stats] = await Promise.all([
        api("GET", "/queue?limit=100&site=" + site),
        api("GET", "/stats?site=" + site),
      ]);
      if (site !== encodeURIComponent(state.site)) return;
      state.items = page.items;
      renderStats(stats.sites[0]);
    } catch (error) {
      say(error.message, "error");
      return;
    }
    const keep = current ? state.items.findIndex((i) => i.comment_id === current.comment_id) : -1;
    state.selected = keep >= 0 ? keep : Math.min(Math.max(state.selected, 0), state.items.length - 1);
    renderQueue();
    if (!current || keep < 0) await loadDetail();
  }

  function renderStats(stats) {
    $("stats").textContent = stats
      ? stats.depth + " waiting · " + stats.claimed + " claimed · oldest " + age(stats.oldest_queued_at)
      : "queue empty";
  }

  function renderQueue() {
    const list = $("queue");
    const rows = state.items.map((item, index) => {
      const row = el("li", "row risk-" + level(item.risk));
      row.dataset.index = String(index);
      row.setAttribute("aria-selected", String(index === state.selected));
      if (index === state.selected) row.classList.add("selected");
      const head = el("div", "row-head");
      head.append(el("span", "row-author", authorName(item)), el("span", "row-age", age(item.queued_at)));
      if (item.claimed_by) {
        const mine = state.me && item.claimed_by === state.me.id;
        head.append(el("span", "badge " + (mine ? "mine" : "other"), mine ? "claimed by you" : "claimed by " + item.claimed_by));
      }
      const flagged = item.reasons.filter((r) => r.code === "reported" || r.code === "appealed");
      if (flagged.some((r) => r.code === "reported")) head.append(el("span", "badge other", "reported"));
      if (flagged.some((r) => r.code === "appealed")) head.append(el("span", "badge other", "appealed"));
      const text = el("div", "row-text", item.text);
      const scores = el("div", "row-scores");
      scores.append(
        el("span", "pill " + level(item.scores.spam), "spam " + item.scores.spam.toFixed(2)),
        el("span", "pill " + level(item.scores.abuse), "abuse " + item.scores.abuse.toFixed(2)),
      );
      row.append(head, text, scores);
      row.addEventListener("click", () => select(index));
      return row;
    });
    list.replaceChildren(...rows);
    show($("empty"), state.items.length === 0);
    const chosen = list.querySelector(".selected");
    if (chosen) chosen.scrollIntoView({ block: "nearest" });
  }

  async function select(index) {
    if (index < 0 || index >= state.items.length) return;
    state.selected = index;
    renderQueue();
    await loadDetail();
  }

  // --- one comment --------------------------------------------------------------------

  async function loadDetail() {
    const item = state.items[state.selected];
    show($("placeholder"), !item);
    show($("detail-body"), Boolean(item));
    if (!item) return;
    renderDetail(item, null);
    const path = "/items/" + encodeURIComponent(item.site_id) + "/" + encodeURIComponent(item.comment_id);
    try {
      const detail = await api("GET", path);
      if (state.items[state.selected] === item) renderDetail(detail.item, detail.history);
    } catch (error) {
      say(error.message, "error");
    }
  }

  function renderDetail(item, history) {
    $("d-author").textContent = authorName(item);
    const meta = ["comment " + item.comment_id, "queued " + age(item.queued_at) + " ago"];
    if (item.author.id) meta.push("author id " + item.author.id);
    if (item.thread_id) meta.push("thread " + item.thread_id);
    $("d-meta").textContent = meta.join(" · ");
    const claim = $("d-claim");
    claim.textContent = item.claimed_by
      ? (state.me && item.claimed_by === state.me.id ? "claimed by you" : "claimed by " + item.claimed_by)
      : "not claimed";
    claim.className = "claim-state " + (item.claimed_by ? "claimed" : "free");
    $("d-text").textContent = item.text;
    $("d-scores").replaceChildren(scoreBar("spam", item.scores.spam), scoreBar("abuse", item.scores.abuse));
    $("d-reasons").replaceChildren(...item.reasons.map((r) => {
      const li = el("li", "reason");
      li.append(el("code", null, r.code), el("span", null, r.detail));
      return li;
    }));
    const list = $("d-history");
    if (history === null) {
      list.replaceChildren();
      show($("d-history-empty"), false);
      return;
    }
    const others = history.filter((h) => h.comment_id !== item.comment_id);
    list.replaceChildren(...others.map((h) => {
      const li = el("li", "past " + h.action);
      const head = el("div", "past-head");
      head.append(el("span", "badge " + h.action, h.action), el("span", "past-by", h.decided_by + " · " + age(h.decided_at) + " ago"));
      li.append(head, el("div", "past-text", h.text));
      return li;
    }));
    show($("d-history-empty"), others.length === 0);
  }

  // --- actions ------------------------------------------------------------------------

  async function act(work) {
    if (state.busy) return;
    state.busy = true;
    try {
      await work();
    } catch (error) {
      say(error.message, "error");
      if (error instanceof ApiError && error.status === 409) await refresh();
    } finally {
      state.busy = false;
    }
  }

  function claim() {
    return act(async () => {
      if (!state.site) return;
      const result = await api("POST", "/queue/claim", { site_id: state.site, count: 10, order: $("claim-order").value });
      say(result.items.length ? "Claimed " + result.items.length + " comments." : "No unclaimed comments left.", "info");
      await refresh();
      await loadDetail();
    });
  }

  // The reason is the moderator's own, never derived from the scores: it is what the model
  // learns. A rejection without one (`r`) goes without a reason, and is not learned from.
  function decide(action, reason) {
    return act(async () => {
      const item = state.items[state.selected];
      if (!item) return;
      const body = action === "approve" ? { action, reason: "ok" } : reason ? { action, reason } : { action };
      const path = "/items/" + encodeURIComponent(item.site_id) + "/" + encodeURIComponent(item.comment_id) + "/decision";
      await api("POST", path, body);
      const done = action === "approve" ? "Approved " : "Rejected ";
      const why = action === "reject" && reason ? " as " + reason.replace(/_/g, " ") : "";
      say(done + item.comment_id + why + ".", action);
      state.items.splice(state.selected, 1);
      state.selected = Math.min(state.selected, state.items.length - 1);
      renderQueue();
      await loadDetail();
    });
  }

  // The reject-as buttons name their reason and key (index.html): one list for clicks and keys.
  function rejectButtons() {
    return Array.from(document.querySelectorAll("#reject-as button[data-reason]"));
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !state.me) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
    const keys = {
      j: () => select(state.selected + 1),
      k: () => select(state.selected - 1),
      a: () => decide("approve"),
      r: () => decide("reject"),
      c: () => claim(),
    };
    for (const button of rejectButtons()) keys[button.dataset.key] = () => decide("reject", button.dataset.reason);
    const run = keys[event.key];
    if (run) {
      event.preventDefault();
      run();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      signIn();
    });
    $("signout").addEventListener("click", () => signOut());
    $("site").addEventListener("change", () => {
      state.site = $("site").value;
      sessionStorage.setItem(SITE_KEY, state.site);
      state.selected = -1;
      state.items = [];
      refresh();
    });
    $("claim").addEventListener("click", claim);
    $("refresh").addEventListener("click", refresh);
    $("approve").addEventListener("click", () => decide("approve"));
    $("reject").addEventListener("click", () => decide("reject"));
    for (const button of rejectButtons()) button.addEventListener("click", () => decide("reject", button.dataset.reason));
    document.addEventListener("keydown", onKey);
    if (sessionStorage.getItem(TOKEN_KEY)) signIn();
    else signOut();
  });
})();
