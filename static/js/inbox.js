// The live inbox's few lines of glue around htmx and its ws extension.
// Customer text is never put in the page as HTML here: the server renders (and escapes) every
// fragment; this file only moves elements, and writes text with textContent.
(function () {
  "use strict";
  const state = { socket: null, typingSentAt: 0, typingTimer: null, notified: null };
  window.chatdeskInbox = state;

  const $ = (selector) => document.querySelector(selector);
  const openConversation = () => {
    const thread = $("#thread");
    return thread ? thread.dataset.conversationId : null;
  };

  function watch() {
    if (!state.socket) return;
    const form = $("#list-filters");
    const view = form ? (form.querySelector("input[name=view]:checked") || {}).value : "all";
    const q = form ? form.querySelector("input[name=q]").value : "";
    const number = form && form.querySelector("[name=channel]");
    state.socket.send(JSON.stringify({
      type: "watch", conversation: openConversation(), view: view || "all", q: q,
      channel: number ? number.value : "",
    }));
    document.querySelectorAll(".conv-row[aria-current]").forEach((row) => row.removeAttribute("aria-current"));
    const current = openConversation() && document.getElementById("conv-" + openConversation());
    if (current) current.setAttribute("aria-current", "true");
  }

  // --- placing live fragments ------------------------------------------------------------
  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function insertSorted(container, el, itemSelector, newestFirst, moreSelector) {
    const items = Array.from(container.querySelectorAll(":scope > " + itemSelector));
    const key = el.dataset.key;
    if (newestFirst) {
      const after = items.find((item) => item.dataset.key < key);
      if (after) return container.insertBefore(el, after), true;
      const more = container.querySelector(":scope > " + moreSelector);
      if (more && items.length) return false; // older than what is loaded: it comes with "cargar más"
      return container.insertBefore(el, more), true;
    }
    for (let i = items.length - 1; i >= 0; i--) {
      if (items[i].dataset.key < key) return items[i].after(el), true;
    }
    if (items.length && container.querySelector(":scope > " + moreSelector)) return false;
    const more = container.querySelector(":scope > " + moreSelector);
    if (more) more.after(el); else container.prepend(el);
    return true;
  }

  // One rule for every line and row, whichever road it came by (the socket, or the answer to
  // this page's own request; docs/live.md): it is placed in its container at once, and when the
  // page already shows it, the furthest copy wins (a line's status rank, a row's key: its last
  // message). Nothing is ever left in #live-staging.
  const rank = (el) => parseInt(el.dataset.rank, 10) || 0;

  function shownIn(container, id) {
    return container && id ? container.querySelector(":scope > #" + CSS.escape(id)) : null;
  }

  function place(el) {
    const isRow = el.classList.contains("conv-row");
    if (!isRow && el.dataset.ref) settle(el.dataset.ref);
    const container = isRow ? $("#conv-list") : $("#thread-messages");
    if (!container) return;
    if (!isRow && el.dataset.conversation !== openConversation()) return; // a thread left behind
    const existing = shownIn(container, el.id);
    if (existing) {
      const older = isRow ? el.dataset.key < existing.dataset.key : rank(el) < rank(existing);
      if (older) return; // a copy rendered before the one shown
      if (existing.dataset.key === el.dataset.key) {
        existing.replaceWith(el);
        htmx.process(el);
        if (isRow && el.id === "conv-" + openConversation()) el.setAttribute("aria-current", "true");
        return;
      }
      existing.remove();
    }
    const follow = !isRow && nearBottom(container);
    const placed = isRow
      ? insertSorted(container, el, ".conv-row", true, ".list-more")
      : insertSorted(container, el, ".msg", false, ".load-older");
    if (!placed) return;
    htmx.process(el);
    if (isRow) {
      const empty = container.querySelector(":scope > .empty");
      if (empty) empty.remove();
      if (el.id === "conv-" + openConversation()) el.setAttribute("aria-current", "true");
    } else if (follow || el.classList.contains("msg-out")) {
      container.scrollTop = container.scrollHeight;
    }
  }

  function drain() {
    const staging = $("#live-staging");
    if (!staging) return;
    staging.querySelectorAll(":scope > .live-op").forEach((op) => {
      op.remove();
      const el = op.firstElementChild;
      if (!el) return;
      if (op.dataset.op === "remove") {
        const gone = shownIn($("#conv-list"), el.dataset.id) || shownIn($("#thread-messages"), el.dataset.id);
        if (gone) gone.remove();
      } else {
        place(el);
      }
    });
    if (staging.firstChild) staging.replaceChildren();
  }

  // Whatever puts something in #live-staging (the socket, an htmx answer whose requesting form
  // was itself replaced meanwhile, so that htmx's events fire on a detached element), it is
  // placed before the browser paints again.
  let observed = null;
  function watchStaging() {
    const staging = $("#live-staging");
    if (!staging || staging === observed) return;
    observed = staging;
    new MutationObserver(drain).observe(staging, { childList: true });
    drain();
  }

  // --- the sender's own reply: shown at once, then swapped for its line ------------------------
  // Each submission gets a reference; the server gives it back on the line (in the answer, and
  // in the socket's copies while it is recent), so the optimistic line becomes that line, once.
  state.pending = new Map(); // reference -> { line, conversation, text }
  state.queue = Promise.resolve();

  function settle(ref) {
    const pending = state.pending.get(ref);
    if (!pending) return null;
    state.pending.delete(ref);
    pending.line.remove();
    return pending;
  }

  // A thread re-fetched (resync, reconnect) while a reply is on its way keeps showing it, or
  // shows the server's line for it instead when the re-fetch already has it.
  function reattach() {
    const box = $("#thread-messages");
    if (!box) return;
    state.pending.forEach((pending, ref) => {
      if (pending.conversation !== openConversation() || box.contains(pending.line)) return;
      if (box.querySelector(":scope > .msg[data-ref='" + CSS.escape(ref) + "']")) settle(ref);
      else box.append(pending.line);
    });
  }

  function newRef() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function child(parent, tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text) el.textContent = text;
    parent.appendChild(el);
    return el;
  }

  function clock(timeZone) {
    try {
      const parts = {};
      new Intl.DateTimeFormat("en-GB", {
        timeZone: timeZone || undefined, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
      }).formatToParts(new Date()).forEach((part) => { parts[part.type] = part.value; });
      return parts.day + "/" + parts.month + " " + parts.hour + ":" + parts.minute;
    } catch (e) { return ""; }
  }

  function pendingLine(form, data, ref) {
    const later = Boolean((data.get("scheduled_for") || "").trim());
    const line = document.createElement("div");
    line.className = "msg msg-out author-agent msg-pending status-" + (later ? "scheduled" : "queued");
    line.dataset.ref = ref;
    line.dataset.key = "~" + ref; // after every line the server placed
    child(line, "div", "msg-author", form.dataset.me);
    const file = data.get("attachment");
    if (file && file.name && file.size) child(child(line, "div", "msg-media"), "span", "muted", "📎 " + file.name);
    const text = (data.get("text") || "").trim();
    if (text) child(line, "div", "msg-body", text);
    const meta = child(line, "div", "msg-meta");
    child(meta, "time", "", clock(form.dataset.tz));
    const tick = child(meta, "span", "tick " + (later ? "tick-scheduled" : "tick-queued"), later ? "🗓" : "🕓");
    tick.dataset.status = later ? "scheduled" : "queued";
    tick.title = later ? form.dataset.scheduled : form.dataset.queued;
    return line;
  }

  function composerReset(form) {
    form.querySelector("textarea[name=text]").value = "";
    const file = form.querySelector(".attachment-input");
    if (file && file.value) {
      file.value = "";
      file.dispatchEvent(new Event("change", { bubbles: true }));
    }
    const later = form.querySelector("input[name=scheduled_for]");
    if (later) later.value = "";
    const details = form.querySelector("details.later");
    if (details) details.open = false;
    const template = form.querySelector("select[name=template]");
    if (template) template.value = "";
    form.querySelector("input[name=reply_to]").value = "";
    form.querySelector(".reply-preview").hidden = true;
    const error = form.querySelector(":scope > .error");
    if (error) error.remove();
  }

  // The reply could not be confirmed: take it off the thread and give its text back.
  function unsent(ref, reason) {
    const pending = settle(ref);
    const form = $("#composer");
    if (!pending || !form || pending.conversation !== openConversation()) return;
    const area = form.querySelector("textarea[name=text]");
    area.value = pending.text + (area.value ? "\n" + area.value : "");
    let note = form.querySelector(":scope > .error");
    if (!note) {
      note = document.createElement("p");
      note.className = "error";
      note.setAttribute("role", "alert");
      form.prepend(note);
    }
    note.textContent = reason;
  }

  // Refused (empty, a file too big, a date in the past): the server's composer says why and
  // holds the text; anything typed since is kept after it.
  function refused(ref, html) {
    const pending = settle(ref);
    const old = $("#composer");
    const tpl = document.createElement("template");
    tpl.innerHTML = html;
    const fresh = tpl.content.querySelector("#composer");
    if (!old || !fresh || !pending || pending.conversation !== openConversation()) return;
    const typed = old.querySelector("textarea[name=text]").value;
    old.replaceWith(fresh);
    htmx.process(fresh);
    const area = fresh.querySelector("textarea[name=text]");
    if (typed) area.value = area.value ? area.value + "\n" + typed : typed;
    area.focus();
  }

  function land(html) {
    const staging = $("#live-staging");
    const tpl = document.createElement("template");
    tpl.innerHTML = html;
    tpl.content.querySelectorAll(".live-op").forEach((op) => staging.append(op));
    drain();
  }

  async function post(url, data, ref, offline) {
    try {
      const response = await fetch(url, {
        method: "POST", body: data, credentials: "same-origin", headers: { "HX-Request": "true" },
      });
      const html = await response.text();
      if (response.status === 422) refused(ref, html);
      else if (response.ok && !response.redirected) land(html);
    } catch (e) { /* no answer: below */ }
    if (state.pending.has(ref)) unsent(ref, offline); // no line came back (network, login, 5xx)
  }

  // htmx would post a form once at a time and read its values when it gets round to it; every
  // Enter is a reply of its own, so this posts each with the values it had, one after another
  // (the thread's order is the order they were typed).
  function send(form) {
    const area = form.querySelector("textarea[name=text]");
    const file = form.querySelector(".attachment-input");
    if (!area.value.trim() && !(file && file.files.length)) return;
    const ref = newRef();
    form.querySelector("input[name=client_ref]").value = ref;
    const data = new FormData(form);
    const line = pendingLine(form, data, ref);
    state.pending.set(ref, { line, conversation: openConversation(), text: area.value });
    const box = $("#thread-messages");
    if (box) {
      box.append(line);
      box.scrollTop = box.scrollHeight;
    }
    composerReset(form);
    const url = form.action;
    const offline = form.dataset.offline;
    state.queue = state.queue.then(() => post(url, data, ref, offline));
  }

  document.addEventListener("submit", (evt) => {
    const form = evt.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "composer") return;
    evt.preventDefault();
    send(form);
  });

  // --- title, notifications, typing ----------------------------------------------------------
  function updateTitle() {
    const total = $("#unread-total");
    const inbox = $("#inbox");
    if (!total || !inbox) return;
    const count = parseInt(total.dataset.count || "0", 10);
    document.title = (count > 0 ? "(" + count + ") " : "") + inbox.dataset.title;
  }

  // Tones that would overlap sound as one: a frame that brings several notifications (a socket
  // that caught up after a burst) beeps once.
  let beepedAt = 0;
  function beep() {
    if (Date.now() - beepedAt < 250) return;
    beepedAt = Date.now();
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch (e) { /* no audio: the notification still shows */ }
  }

  // Called on every swap of #notify, not once per frame: a frame may bring several messages
  // (each its own #notify, swapped in turn), and each is notified as if it came alone.
  function notify() {
    const box = $("#notify");
    if (!box || !box.dataset.id || box.dataset.id === state.notified) return;
    state.notified = box.dataset.id;
    // The socket leaves out numbers the list is filtered away from; this covers a frame
    // rendered before the socket heard of a filter just picked.
    const number = document.querySelector("#list-filters [name=channel]");
    if (number && number.value && box.dataset.channel && number.value !== box.dataset.channel) return;
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    // Notification text is plain text: no HTML is interpreted.
    const note = new Notification(box.dataset.title, { body: box.dataset.body, tag: "conv-" + box.dataset.conversation });
    note.onclick = () => { window.focus(); window.location.href = "/inbox/c/" + box.dataset.conversation + "/"; };
    beep();
  }

  function showTypingForAWhile() {
    const typing = $("#typing");
    if (!typing || !typing.textContent.trim()) return;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => { typing.textContent = ""; }, 5000);
  }

  function afterLiveMessage() {
    drain();
    updateTitle();
    notify();
    showTypingForAWhile();
  }

  // --- socket lifecycle: reconnects (the ws extension backs off) and resync ---------------------
  // Exponential backoff with jitter, capped at 10 s: after a restart agents are back quickly.
  htmx.config.wsReconnectDelay = (retryCount) =>
    Math.min(500 * Math.pow(2, retryCount), 10000) * (0.5 + Math.random() / 2);
  document.addEventListener("htmx:wsOpen", (evt) => {
    state.socket = evt.detail.socketWrapper;
    const banner = $("#offline-banner");
    if (banner) banner.hidden = true;
    watch();
    // Events are at-most-once: whatever happened while we were away is re-fetched.
    htmx.trigger(document.body, "inbox:resync");
  });
  document.addEventListener("htmx:wsClose", () => {
    const banner = $("#offline-banner");
    if (banner) banner.hidden = false;
  });
  document.addEventListener("htmx:wsAfterMessage", afterLiveMessage);
  // Many rows changed at once (a campaign batch): re-fetch the list, at most every few seconds.
  let staleTimer = null;
  function listStale() {
    if (staleTimer) return;
    staleTimer = setTimeout(() => {
      staleTimer = null;
      htmx.trigger(document.body, "inbox:list-stale");
    }, 3000);
  }
  // The socket missed events (it fell behind): re-fetch list and thread, as after a reconnect;
  // at most every 5 s, so a server already behind is not asked for more than it can give.
  let resyncTimer = null;
  let resyncAt = 0;
  function liveResync() {
    if (resyncTimer) return;
    const wait = Math.max(1000, resyncAt + 5000 - Date.now());
    resyncTimer = setTimeout(() => {
      resyncTimer = null;
      resyncAt = Date.now();
      htmx.trigger(document.body, "inbox:resync");
    }, wait);
  }
  document.addEventListener("htmx:oobAfterSwap", (evt) => {
    const id = evt.detail && evt.detail.target && evt.detail.target.id;
    if (id === "live-staging") drain();
    else if (id === "notify") notify();
    else if (id === "list-stale") listStale();
    else if (id === "live-resync") liveResync();
  });
  document.addEventListener("htmx:afterSettle", (evt) => {
    const target = evt.detail && evt.detail.target;
    watchStaging();
    drain();
    reattach();
    updateTitle();  // a re-fetched list brings the unread count
    if (!target) return;
    if (target.id === "thread-pane") {
      const inbox = $("#inbox");
      if (inbox) inbox.classList.add("has-thread");
      watch();
      scrollThread();
    } else if (target.id === "thread-messages") {
      scrollThread();
    }
  });
  document.addEventListener("htmx:historyRestore", () => {
    watchStaging();
    watch();
  });
  // The socket filters live rows the way the list is filtered.
  let filterTimer = null;
  document.addEventListener("change", (evt) => {
    if (evt.target.closest && evt.target.closest("#list-filters")) watch();
  });
  document.addEventListener("input", (evt) => {
    if (!evt.target.closest || !evt.target.closest("#list-filters")) return;
    clearTimeout(filterTimer);
    filterTimer = setTimeout(watch, 450);
  });

  function scrollThread() {
    const box = $("#thread-messages");
    if (box && !box.dataset.scrolled) { box.scrollTop = box.scrollHeight; box.dataset.scrolled = "1"; }
  }

  // --- composer: Enter sends, Shift+Enter is a new line, typing pings, quoting ----------------
  document.addEventListener("keydown", (evt) => {
    const area = evt.target;
    if (!(area instanceof HTMLTextAreaElement) || !area.closest("#composer")) return;
    if (evt.key === "Enter" && !evt.shiftKey && !evt.isComposing) {
      evt.preventDefault();
      const file = area.form.querySelector(".attachment-input");
      if (area.value.trim() || (file && file.files.length)) area.form.requestSubmit();
    }
  });
  document.addEventListener("input", (evt) => {
    if (!evt.target.closest || !evt.target.closest("#composer") || !state.socket) return;
    const now = Date.now();
    if (now - state.typingSentAt > 2000) {
      state.typingSentAt = now;
      state.socket.send(JSON.stringify({ type: "typing" }));
    }
  });
  document.addEventListener("click", (evt) => {
    const quote = evt.target.closest && evt.target.closest(".quote-btn");
    const composer = $("#composer");
    if (quote && composer) {
      const line = document.getElementById("msg-" + quote.dataset.replyTo);
      const body = line && line.querySelector(".msg-body");
      composer.querySelector("input[name=reply_to]").value = quote.dataset.replyTo;
      const preview = composer.querySelector(".reply-preview");
      preview.querySelector(".reply-text").textContent = body ? body.textContent.slice(0, 140) : "";
      preview.hidden = false;
      composer.querySelector("textarea").focus();
      return;
    }
    if (evt.target.closest && evt.target.closest(".reply-clear") && composer) {
      composer.querySelector("input[name=reply_to]").value = "";
      composer.querySelector(".reply-preview").hidden = true;
    }
    if (evt.target.id === "notify-enable" && "Notification" in window) {
      Notification.requestPermission().then(() => {
        evt.target.hidden = Notification.permission === "granted";
      });
    }
  });

  // --- attachments: show the chosen file's name (as text) and let it be removed -------------
  document.addEventListener("change", (evt) => {
    const input = evt.target;
    if (!(input instanceof HTMLInputElement) || !input.classList.contains("attachment-input")) return;
    const chosen = input.form && input.form.querySelector(".attachment-chosen");
    if (!chosen) return;
    chosen.querySelector(".attachment-name").textContent = input.files.length ? input.files[0].name : "";
    chosen.hidden = !input.files.length;
  });
  document.addEventListener("click", (evt) => {
    const clear = evt.target.closest && evt.target.closest(".attachment-clear");
    if (!clear) return;
    const form = clear.closest("form");
    const input = form.querySelector(".attachment-input");
    input.value = "";
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // --- emoji picker (vendored emoji-picker-element, loaded on first use) ----------------------
  // The library's default data source is a CDN: it is always given our own copy instead, in
  // the constructor, before the picker could create its database.
  async function emojiPicker(button, box) {
    const [{ default: Picker }, { default: es }] = await Promise.all([
      import(button.dataset.picker), import(button.dataset.i18n),
    ]);
    const picker = new Picker({ dataSource: button.dataset.source, locale: "es", i18n: es });
    // Under a strict CSP (style-src 'self') the picker's own <style> is not applied: adopt
    // the same rules as a constructed stylesheet, which CSP allows.
    const style = picker.shadowRoot.querySelector("style");
    if (style && "adoptedStyleSheets" in picker.shadowRoot) {
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(style.textContent);
        picker.shadowRoot.adoptedStyleSheets = [sheet];
      } catch (e) { /* the <style> element still works where CSP allows it */ }
    }
    box.appendChild(picker);
    return picker;
  }

  function insertAtCursor(area, text) {
    const start = area.selectionStart ?? area.value.length;
    const end = area.selectionEnd ?? area.value.length;
    area.setRangeText(text, start, end, "end");
    area.focus();
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("click", async (evt) => {
    const button = evt.target.closest && evt.target.closest("#emoji-toggle");
    if (!button) return;
    const box = document.getElementById("emoji-box");
    if (!box) return;
    const open = box.hidden;
    box.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open && !box.querySelector("emoji-picker")) await emojiPicker(button, box);
  });
  document.addEventListener("emoji-click", (evt) => {
    const composer = $("#composer");
    const area = composer && composer.querySelector("textarea[name=text]");
    if (area && evt.detail && evt.detail.unicode) insertAtCursor(area, evt.detail.unicode);
  });
  document.addEventListener("keydown", (evt) => {
    if (evt.key !== "Escape") return;
    const box = document.getElementById("emoji-box");
    if (box && !box.hidden) {
      box.hidden = true;
      const button = $("#emoji-toggle");
      if (button) button.setAttribute("aria-expanded", "false"), button.focus();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const enable = $("#notify-enable");
    if (enable && "Notification" in window && Notification.permission !== "granted") enable.hidden = false;
    watchStaging();
    scrollThread();
    updateTitle();
  });
})();
