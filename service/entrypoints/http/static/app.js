// The moderator page. Comment text and author names are hostile: every value from the API
// reaches the page through textContent, never as markup.
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "moderation.token";
  const SITE_KEY = "moderation.site";
  const REFRESH_MS = 5000;

  const $ = (id) => document.getElementById(id);
  const state = { me: null, site: null, items: [], selected: -1, busy: false, timer: null, keysOpener: null };
  // Bulk: the comment ids ticked on this site (x, shift-click, select all shown), the row a
  // shift-click extends from, and this moderator's bulk actions still pending, by id.
  const bulk = { checked: new Set(), anchor: -1, pending: new Map(), rows: new Map(), timer: null };
  // Authors trusted or blocked on their site, as the item details and the page's own actions
  // told: site + "\u001f" + author id -> the status document, or null (neither).
  const authors = new Map();

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

  // A score's level is written out beside its colour: colour is never the only sign of it.
  function pill(label, value) {
    const node = el("span", "pill " + level(value), label + " " + value.toFixed(2) + " ");
    node.append(el("span", "level", level(value)));
    return node;
  }

  function scoreBar(label, value) {
    const wrap = el("div", "score " + level(value));
    wrap.append(el("span", "score-label", label));
    const track = el("span", "track");
    track.setAttribute("aria-hidden", "true"); // the number beside it says the same
    const fill = el("span", "fill w" + Math.round(value * 20) * 5);
    track.append(fill);
    wrap.append(track, el("span", "score-value", value.toFixed(2)), el("span", "score-level", level(value)));
    return wrap;
  }

  // A box that scrolls takes the keyboard focus, so that it can be scrolled without a mouse.
  function focusableWhileScrolling(node) {
    if (node.scrollHeight > node.clientHeight) node.tabIndex = 0;
    else node.removeAttribute("tabindex");
  }

  function authorName(item) {
    return item.author.name || item.author.id || "anonymous";
  }

  // --- signing in and out -------------------------------------------------------------

  function signOut(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(state.timer);
    clearInterval(bulk.timer);
    bulk.checked.clear();
    bulk.pending.clear();
    renderUndo();
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
    // The sign-in form is gone: the keyboard focus goes to the first comment of the queue.
    const row = $("queue").children[state.selected];
    if (row && !$("workspace").contains(document.activeElement)) row.focus();
    state.timer = setInterval(() => {
      if (!document.hidden && !state.busy) refresh();
    }, REFRESH_MS);
    bulk.timer = setInterval(tickBulk, 1000);
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
      const [page, stats, spot, held] = await Promise.all([
        api("GET", "/queue?limit=100&site=" + site),
        api("GET", "/stats?site=" + site),
        api("GET", "/spot-checks?site=" + site),
        api("GET", "/bulk-actions?site=" + site),
      ]);
      if (site !== encodeURIComponent(state.site)) return;
      for (const action of held.bulk_actions) {
        if (!bulk.pending.has(action.id)) bulk.pending.set(action.id, { action, deadline: Date.parse(action.apply_at), text: pendingText(action) });
      }
      renderUndo();
      // The comments of a pending bulk action are held for it: not shown until it is undone.
      const hidden = heldIds();
      state.items = page.items.filter((i) => !hidden.has(i.comment_id));
      const shown = new Set(state.items.map((i) => i.comment_id));
      for (const id of bulk.checked) if (!shown.has(id)) bulk.checked.delete(id);
      renderStats(stats.sites[0]);
      renderSpotChecks(spot.spot_checks);
    } catch (error) {
      say(error.message, "error");
      return;
    }
    const keep = current ? state.items.findIndex((i) => i.comment_id === current.comment_id) : -1;
    state.selected = keep >= 0 ? keep : Math.min(Math.max(state.selected, 0), state.items.length - 1);
    renderQueue();
    if (!current || keep < 0) await loadDetail();
  }

  // Spot checks: how often moderators overturned a sampled automatic decision (text only).
  function renderSpotChecks(estimates) {
    const pct = (x) => (100 * x).toFixed(1) + "%";
    const lines = estimates.filter((e) => e.rate !== null).map((e) =>
      (e.auto_action === "approve" ? "auto-approved, would reject: " : "auto-rejected, would approve: ") +
      pct(e.rate) + " (95% CI " + pct(e.low) + "–" + pct(e.high) + ", " + e.overturned + " of " + e.checked + ")");
    $("spot-checks").textContent = lines.length ? "Spot checks · " + lines.join(" · ") : "";
    show($("spot-checks"), lines.length > 0);
  }

  function renderStats(stats) {
    $("stats").textContent = stats
      ? stats.depth + " waiting · " + stats.claimed + " claimed · oldest " + age(stats.oldest_queued_at)
      : "queue empty";
  }

  // The queue is a list box: the selected row is its one tab stop (Tab reaches the queue
  // there, j/k and the arrow keys move within it). Rows are kept, keyed by comment, so that a
  // refresh does not take the keyboard focus away from the row that has it.
  function renderQueue() {
    const list = $("queue");
    const focused = list.contains(document.activeElement);
    const kept = new Map(Array.from(list.children, (row) => [row.dataset.id, row]));
    const rows = state.items.map((item, index) => {
      const row = kept.get(item.comment_id) || el("li");
      kept.delete(item.comment_id);
      fillRow(row, item, index);
      return row;
    });
    for (const gone of kept.values()) gone.remove();
    rows.forEach((row, index) => {
      if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
    });
    show(list, state.items.length > 0);
    show($("empty"), state.items.length === 0);
    renderBulkBar();
    const chosen = rows[state.selected];
    if (!chosen) return;
    if (focused && document.activeElement !== chosen) chosen.focus({ preventScroll: true });
    chosen.scrollIntoView({ block: "nearest" });
  }

  function fillRow(row, item, index) {
    const chosen = index === state.selected;
    row.className = "row risk-" + level(item.risk) + (chosen ? " selected" : "");
    row.dataset.id = item.comment_id;
    row.dataset.index = String(index);
    row.setAttribute("role", "option");
    row.setAttribute("aria-selected", String(chosen));
    const ticked = bulk.checked.has(item.comment_id);
    row.setAttribute("aria-checked", String(ticked)); // in the bulk selection
    if (ticked) row.classList.add("checked");
    row.tabIndex = chosen || (state.selected < 0 && index === 0) ? 0 : -1;
    const head = el("div", "row-head");
    const check = el("span", "check", ticked ? "☑" : "☐");
    check.setAttribute("aria-hidden", "true"); // aria-checked says it; the glyph shows it
    head.append(check, el("span", "row-author", authorName(item)), el("span", "row-age", age(item.queued_at)));
    if (item.claimed_by) {
      const mine = state.me && item.claimed_by === state.me.id;
      head.append(el("span", "badge " + (mine ? "mine" : "other"), mine ? "claimed by you" : "claimed by " + item.claimed_by));
    }
    const flagged = item.reasons.filter((r) => r.code === "reported" || r.code === "appealed");
    if (flagged.some((r) => r.code === "reported")) head.append(el("span", "badge other", "reported"));
    if (flagged.some((r) => r.code === "appealed")) head.append(el("span", "badge other", "appealed"));
    const mark = authorMark(item);
    if (mark) head.append(el("span", "badge " + (mark.status === "blocked" ? "reject" : "approve"), "author " + mark.status));
    if (item.reasons.some((r) => r.code === "spot_check")) head.append(el("span", "badge other", "spot check"));
    const scores = el("div", "row-scores");
    scores.append(pill("spam", item.scores.spam), pill("abuse", item.scores.abuse));
    row.replaceChildren(head, el("div", "row-text", item.text), scores);
  }

  // Selecting by key puts the keyboard focus on the row; a click focuses it by itself.
  async function select(index, focus) {
    if (index < 0 || index >= state.items.length) return;
    state.selected = index;
    renderQueue();
    if (focus) $("queue").children[index].focus();
    await loadDetail();
  }

  // --- one comment --------------------------------------------------------------------

  async function loadDetail() {
    const item = state.items[state.selected];
    show($("placeholder"), !item);
    show($("detail-body"), Boolean(item));
    if (!item) return;
    renderDetail(item, null);
    renderAuthor(item);
    renderContext(item, null);
    const path = "/items/" + encodeURIComponent(item.site_id) + "/" + encodeURIComponent(item.comment_id);
    try {
      const detail = await api("GET", path);
      if (state.items[state.selected] !== item) return;
      renderDetail(detail.item, detail.history);
      rememberAuthor(item, detail.author_status);
      renderAuthor(item);
      renderQueue();
      renderContext(detail.item, detail);
    } catch (error) {
      say(error.message, "error");
    }
  }

  // --- the author on this site: trusted, blocked, or neither ---------------------------

  function authorKey(item) {
    return item.site_id + "\u001f" + item.author.id;
  }

  function authorMark(item) {
    return item.author.id ? authors.get(authorKey(item)) || null : null;
  }

  function rememberAuthor(item, mark) {
    if (item.author.id) authors.set(authorKey(item), mark);
  }

  function renderAuthor(item) {
    const box = $("d-author-actions");
    show(box, Boolean(item.author.id));
    if (!item.author.id) return;
    const mark = authorMark(item);
    const known = authors.has(authorKey(item));
    const status = $("d-author-status");
    status.className = "author-status" + (mark ? " " + mark.status : "");
    if (!mark) {
      status.textContent = known ? "Author neither trusted nor blocked on this site" : "Author on this site";
    } else {
      let text = "Author " + mark.status + " on this site by " + mark.set_by + " · " + age(mark.set_at) + " ago";
      if (mark.note) text += " · " + mark.note;
      status.textContent = text;
    }
    const trusted = mark && mark.status === "trusted";
    const blocked = mark && mark.status === "blocked";
    setButton($("author-trust"), trusted ? "Untrust author" : "Trust author", "t");
    setButton($("author-block"), blocked ? "Unblock author" : "Block author", "b");
    $("author-trust").disabled = !known;
    $("author-block").disabled = !known;
  }

  function setButton(button, label, key) {
    button.replaceChildren(label + " ", el("kbd", null, key));
  }

  // `status` toggles: blocking a blocked author unblocks them, and the same for trust. The
  // pipeline reads the change from the author's next comment, on every instance.
  function toggleAuthor(status) {
    return act(async () => {
      const item = state.items[state.selected];
      if (!item || !item.author.id || !authors.has(authorKey(item))) return;
      const path = "/sites/" + encodeURIComponent(item.site_id) + "/authors/" + encodeURIComponent(item.author.id);
      const current = authorMark(item);
      const who = authorName(item);
      if (current && current.status === status) {
        await api("DELETE", path);
        rememberAuthor(item, null);
        say((status === "blocked" ? "Unblocked " : "No longer trusting ") + who + " on " + item.site_id + ".", "info");
      } else {
        const result = await api("PUT", path, { status });
        rememberAuthor(item, result.author);
        say((status === "blocked" ? "Blocked " : "Trusting ") + who + " on " + item.site_id + ": their next comments are " +
          (status === "blocked" ? "rejected." : "approved."), "info");
      }
      renderAuthor(item);
      renderQueue();
    });
  }

  // Only an http(s) URL is ever a link (the service refuses others; this is the second
  // lock): anything else, javascript: included, is shown as text. The title is text too.
  function httpUrl(value) {
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch (error) {
      return false;
    }
  }

  function renderArticle(item) {
    const box = $("d-article");
    box.replaceChildren();
    show(box, Boolean(item.thread_url || item.thread_title));
    if (!item.thread_url && !item.thread_title) return;
    box.append("Article: ");
    const title = el("span", "article-title", item.thread_title || item.thread_url);
    if (!item.thread_url || !httpUrl(item.thread_url)) {
      box.append(title);
      return;
    }
    const link = el("a");
    link.setAttribute("href", item.thread_url);
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.referrerPolicy = "no-referrer";
    link.append(title, " ", el("span", "new-tab", "(opens in a new tab)"));
    box.append(link);
  }

  function decisionText(entry) {
    if (entry.action === "review") return "waiting for review";
    const done = entry.action === "approve" ? "approved" : "rejected";
    const why = entry.decision_reason ? " as " + entry.decision_reason.replace(/_/g, " ") : "";
    return done + why + " by " + entry.decided_by + " · " + age(entry.decided_at) + " ago";
  }

  // The comment the item answers, the article, the author's counts; `detail` null: loading.
  function renderContext(item, detail) {
    renderArticle(item);
    const box = $("d-parent");
    const parent = detail && detail.parent;
    show(box, Boolean(item.parent_id));
    if (!parent) {
      $("d-parent-head").textContent = item.parent_id
        ? "comment " + item.parent_id + (detail ? " (not in the store)" : "")
        : "";
      $("d-parent-text").textContent = "";
    } else {
      const author = parent.author.name || parent.author.id || "anonymous";
      $("d-parent-head").replaceChildren(
        el("span", "parent-author", author),
        el("span", "badge " + parent.action, parent.action),
        el("span", "parent-decision", decisionText(parent)),
      );
      $("d-parent-text").textContent = parent.text;
    }
    const counts = detail && detail.author_counts;
    show($("d-counts"), Boolean(counts));
    $("d-counts").textContent = counts
      ? counts.total + " on this site: " + counts.approved + " approved · " + counts.rejected +
        " rejected · " + counts.reported + " reported · " + counts.waiting + " waiting"
      : "";
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
    focusableWhileScrolling($("d-text"));
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

  // Actions run one after another, in the order the moderator asked for them: a key pressed
  // while the previous action is still loading waits for it instead of being lost.
  let pending = Promise.resolve();
  function act(work) {
    pending = pending.then(async () => {
      state.busy = true;
      try {
        await work();
      } catch (error) {
        say(error.message, "error");
        if (error instanceof ApiError && error.status === 409) await refresh();
      } finally {
        state.busy = false;
      }
    });
    return pending;
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

  // --- bulk decisions with undo --------------------------------------------------------

  function heldIds() {
    const ids = new Set();
    for (const { action } of bulk.pending.values()) {
      if (action.site_id === state.site) for (const i of action.items) ids.add(i.comment_id);
    }
    return ids;
  }

  function renderBulkBar() {
    const n = bulk.checked.size;
    $("bulk-count").textContent = n ? n + " selected" : "None selected";
    $("bulk-bar").classList.toggle("active", n > 0);
    show($("bulk-actions"), n > 0);
    const all = state.items.length > 0 && state.items.every((i) => bulk.checked.has(i.comment_id));
    setButton($("select-all"), all ? "Clear selection" : "Select all shown", "s");
  }

  function setChecked(ids, on) {
    for (const id of ids) {
      if (on) bulk.checked.add(id);
      else bulk.checked.delete(id);
    }
    renderQueue();
  }

  // `x`: tick or untick the selected comment; a shift-click ticks every row from the last one
  // ticked to the clicked one.
  function toggleChecked(index) {
    const item = state.items[index];
    if (!item) return;
    bulk.anchor = index;
    setChecked([item.comment_id], !bulk.checked.has(item.comment_id));
  }

  function checkRange(index) {
    const from = bulk.anchor >= 0 && bulk.anchor < state.items.length ? bulk.anchor : index;
    const [low, high] = from <= index ? [from, index] : [index, from];
    bulk.anchor = index;
    setChecked(state.items.slice(low, high + 1).map((i) => i.comment_id), true);
  }

  function toggleAllShown() {
    const ids = state.items.map((i) => i.comment_id);
    if (ids.length > 0 && ids.every((id) => bulk.checked.has(id))) clearChecked();
    else setChecked(ids, true);
  }

  function clearChecked() {
    bulk.checked.clear();
    renderQueue();
  }

  function pendingText(a) {
    return verdictText(a.action, a.action === "reject" ? a.reason : null, a.items.length);
  }

  function verdictText(action, reason, count) {
    const what = count + (count === 1 ? " comment" : " comments");
    if (action === "approve") return "Approved " + what;
    return "Rejected " + what + (reason ? " as " + reason.replace(/_/g, " ") : "");
  }

  // The selection, decided in one bulk action that the service holds for the undo window:
  // nothing is published before it ends, and `u` (or the bar's button) cancels it.
  function bulkDecide(action, reason) {
    return act(async () => {
      const ids = state.items.map((i) => i.comment_id).filter((id) => bulk.checked.has(id));
      if (!ids.length || !state.site) return;
      const body = { site_id: state.site, comment_ids: ids, action };
      if (action === "approve") body.reason = "ok";
      else if (reason) body.reason = reason;
      const result = await api("POST", "/bulk-actions", body);
      const created = result.bulk_action;
      const span = Date.parse(created.apply_at) - Date.parse(created.created_at);
      const text = verdictText(action, reason, ids.length);
      bulk.pending.set(created.id, { action: created, deadline: Date.now() + span, text });
      bulk.checked.clear();
      say(text + ": published in " + Math.round(span / 1000) + " s unless you undo it (u).", action);
      const held = new Set(ids);
      const current = state.items[state.selected];
      state.items = state.items.filter((i) => !held.has(i.comment_id));
      const keep = current ? state.items.indexOf(current) : -1;
      state.selected = keep >= 0 ? keep : Math.min(Math.max(state.selected, 0), state.items.length - 1);
      renderUndo();
      renderQueue();
      await loadDetail();
    });
  }

  // The newest bulk action still inside its window (the one `u` undoes).
  function newestUndoable() {
    let newest = null;
    for (const entry of bulk.pending.values()) {
      if (entry.deadline > Date.now() && (!newest || entry.deadline > newest.deadline)) newest = entry;
    }
    return newest;
  }

  function undoBulk(id) {
    return act(async () => {
      const entry = id ? bulk.pending.get(id) : newestUndoable();
      if (!entry) return;
      const path = "/bulk-actions/" + encodeURIComponent(entry.action.id) + "/undo";
      const result = await api("POST", path, {});
      bulk.pending.delete(result.bulk_action.id);
      say("Undone: “" + entry.text + "”. Nothing was published; the comments are back in the queue.", "info");
      renderUndo();
      await refresh();
    });
  }

  function secondsLeft(entry) {
    return Math.max(0, Math.ceil((entry.deadline - Date.now()) / 1000));
  }

  // One line per pending action; lines are kept so that the focus stays on an Undo button.
  function renderUndo() {
    const list = $("undo-bar");
    for (const [id, row] of bulk.rows) {
      if (!bulk.pending.has(id)) {
        row.remove();
        bulk.rows.delete(id);
      }
    }
    const newest = newestUndoable();
    for (const [id, entry] of bulk.pending) {
      let row = bulk.rows.get(id);
      if (!row) {
        row = el("li");
        const text = el("span", "undo-what", entry.text);
        const left = el("span", "undo-left");
        left.setAttribute("aria-hidden", "true"); // the countdown would be read every second
        const button = el("button", "undo");
        button.type = "button";
        button.addEventListener("click", () => undoBulk(id));
        row.append(text, left, button);
        bulk.rows.set(id, row);
        list.append(row);
      }
      const open = entry.deadline > Date.now();
      row.querySelector(".undo-left").textContent = open ? "published in " + secondsLeft(entry) + " s" : "publishing…";
      const button = row.querySelector("button");
      show(button, open);
      if (entry === newest) {
        setButton(button, "Undo", "u");
        button.setAttribute("aria-keyshortcuts", "u");
      } else {
        button.replaceChildren("Undo");
        button.removeAttribute("aria-keyshortcuts");
      }
    }
    show(list, bulk.pending.size > 0);
  }

  // Every second: the countdowns, and for a window that has closed, what the service did.
  async function tickBulk() {
    renderUndo();
    for (const [id, entry] of bulk.pending) {
      if (entry.deadline > Date.now() || entry.checking) continue;
      entry.checking = true;
      try {
        const { bulk_action: action } = await api("GET", "/bulk-actions/" + encodeURIComponent(id));
        if (action.status === "pending") continue;
        bulk.pending.delete(id);
        renderUndo();
        if (action.status === "undone") {
          say("A bulk action was undone elsewhere; nothing of it was published.", "info");
        } else {
          const decided = action.items.filter((i) => i.outcome === "decided").length;
          const skipped = action.items.length - decided;
          say(entry.text + ": published" +
            (skipped ? " for " + decided + "; " + skipped + " had been decided meanwhile or were gone, and were left as they were." : "."), action.action);
        }
        if (!state.busy) await refresh();
      } catch (error) {
        say(error.message, "error");
      } finally {
        entry.checking = false;
      }
    }
  }

  // A decision key acts on the bulk selection while there is one, else on the selected comment
  // (the item's own buttons always act on that comment alone).
  function decideByKey(action, reason) {
    return bulk.checked.size ? bulkDecide(action, reason) : decide(action, reason);
  }

  // The reject-as buttons name their reason and key (index.html): one list for clicks and keys.
  function rejectButtons() {
    return Array.from(document.querySelectorAll("#reject-as button[data-reason]"));
  }

  // Every key of the page, in the order the keys dialog lists them: the handler and the list
  // are made from this one table.
  function keyTable() {
    const rejects = rejectButtons().map((button) => ({
      keys: [button.dataset.key],
      what: "reject as " + button.dataset.reason.replace(/_/g, " ") + " (the selected comment, or the bulk selection)",
      run: () => decideByKey("reject", button.dataset.reason),
    }));
    return [
      { keys: ["j"], what: "next comment", run: () => select(state.selected + 1, true) },
      { keys: ["k"], what: "previous comment", run: () => select(state.selected - 1, true) },
      { keys: ["c"], what: "claim 10 comments, in the order chosen beside the button", run: () => claim() },
      { keys: ["a"], what: "approve the selected comment (or every comment in the bulk selection)", run: () => decideByKey("approve") },
      ...rejects,
      { keys: ["r"], what: "reject without a reason, not learned from (the selected comment, or the bulk selection)", run: () => decideByKey("reject") },
      { keys: ["x"], what: "add the selected comment to the bulk selection, or take it out", run: () => toggleChecked(state.selected) },
      { keys: ["s"], what: "select all comments shown for a bulk decision, or clear the selection", run: () => toggleAllShown() },
      { keys: ["u"], what: "undo the last bulk decision while its window is open", run: () => undoBulk(null) },
      { keys: ["t"], what: "trust the author on this site, or stop trusting them", run: () => toggleAuthor("trusted") },
      { keys: ["b"], what: "block the author on this site, or unblock them", run: () => toggleAuthor("blocked") },
      { keys: ["?"], what: "show or hide this list", run: () => toggleKeys() },
    ];
  }

  // Listed too: the list box's own keys (queueKey, while a queue row has the focus) and the
  // dialog's own Esc.
  const OTHER_KEYS = [
    { keys: ["↓", "↑"], what: "next / previous comment, in the queue" },
    { keys: ["Home", "End"], what: "first / last comment, in the queue" },
    { keys: ["Esc"], what: "close this list" },
  ];

  function renderKeyList() {
    const rows = [...keyTable(), ...OTHER_KEYS].map((entry) => {
      const row = el("div", "key-row");
      const term = el("dt");
      entry.keys.forEach((key, n) => {
        if (n) term.append(" / ");
        term.append(el("kbd", null, key));
      });
      row.append(term, el("dd", null, entry.what));
      return row;
    });
    $("key-list").replaceChildren(...rows);
  }

  function toggleKeys() {
    const dialog = $("keys-dialog");
    if (dialog.open) {
      dialog.close();
      return;
    }
    state.keysOpener = document.activeElement;
    dialog.showModal();
  }

  function keysClosed() {
    const opener = state.keysOpener;
    state.keysOpener = null;
    // "close" arrives a task after the dialog shut: if the focus has moved on meanwhile (the
    // browser put it back, or the user went elsewhere), it stays where it is.
    const now = document.activeElement;
    if (now && now !== document.body && !$("keys-dialog").contains(now)) return;
    if (opener && opener.isConnected && opener !== document.body) opener.focus();
    else if ($("queue").children[state.selected]) $("queue").children[state.selected].focus();
  }

  function queueKey(event) {
    const moves = {
      ArrowDown: state.selected + 1,
      ArrowUp: state.selected - 1,
      Home: 0,
      End: state.items.length - 1,
    };
    if (!(event.key in moves)) return false;
    event.preventDefault();
    select(moves[event.key], true);
    return true;
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
    if ($("keys-dialog").open) {
      // The dialog is modal: no key acts on the page behind it (Esc is the dialog's own).
      if (event.key === "?") {
        event.preventDefault();
        toggleKeys();
      }
      return;
    }
    if (event.key !== "?" && !state.me) return;
    if (target instanceof Element && target.closest("#queue") && queueKey(event)) return;
    const entry = keyTable().find((e) => e.keys.includes(event.key));
    if (entry) {
      event.preventDefault();
      entry.run();
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
    $("author-trust").addEventListener("click", () => toggleAuthor("trusted"));
    $("author-block").addEventListener("click", () => toggleAuthor("blocked"));
    for (const button of rejectButtons()) button.addEventListener("click", () => decide("reject", button.dataset.reason));
    $("queue").addEventListener("click", (event) => {
      const row = event.target instanceof Element ? event.target.closest(".row") : null;
      if (!row) return;
      const index = state.items.findIndex((i) => i.comment_id === row.dataset.id);
      if (event.shiftKey) checkRange(index);
      else if (event.target.closest(".check")) toggleChecked(index);
      select(index);
    });
    // A shift-click extends the bulk selection; it does not select the page's text.
    $("queue").addEventListener("mousedown", (event) => {
      if (event.shiftKey) event.preventDefault();
    });
    $("select-all").addEventListener("click", toggleAllShown);
    $("bulk-clear").addEventListener("click", clearChecked);
    $("bulk-approve").addEventListener("click", () => bulkDecide("approve"));
    $("bulk-reject").addEventListener("click", () => bulkDecide("reject", $("bulk-reason").value || null));
    renderKeyList();
    $("keys-open").addEventListener("click", toggleKeys);
    $("keys-close").addEventListener("click", () => $("keys-dialog").close());
    $("keys-dialog").addEventListener("close", keysClosed);
    new ResizeObserver(() => focusableWhileScrolling($("d-text"))).observe($("d-text"));
    document.addEventListener("keydown", onKey);
    if (sessionStorage.getItem(TOKEN_KEY)) signIn();
    else signOut();
  });
})();
