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
    state.socket.send(JSON.stringify({ type: "watch", conversation: openConversation(), view: view || "all", q: q }));
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

  function drain() {
    const staging = $("#live-staging");
    if (!staging) return;
    staging.querySelectorAll(":scope > .live-op").forEach((op) => {
      const el = op.firstElementChild;
      op.remove();
      if (!el) return;
      const kind = op.dataset.op;
      if (kind === "remove") {
        const gone = document.getElementById(el.dataset.id);
        if (gone) gone.remove();
        return;
      }
      const existing = document.getElementById(el.id);
      if (kind === "replace" || (existing && existing.dataset.key === el.dataset.key)) {
        if (existing) existing.replaceWith(el), htmx.process(el);
        return;
      }
      const isRow = el.classList.contains("conv-row");
      const container = isRow ? $("#conv-list") : $("#thread-messages");
      if (!container) return;
      const follow = !isRow && nearBottom(container);
      if (existing) existing.remove();
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
    });
  }

  // --- title, notifications, typing ----------------------------------------------------------
  function updateTitle() {
    const total = $("#unread-total");
    const inbox = $("#inbox");
    if (!total || !inbox) return;
    const count = parseInt(total.dataset.count || "0", 10);
    document.title = (count > 0 ? "(" + count + ") " : "") + inbox.dataset.title;
  }

  function beep() {
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

  function notify() {
    const box = $("#notify");
    if (!box || !box.dataset.id || box.dataset.id === state.notified) return;
    state.notified = box.dataset.id;
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
    else if (id === "list-stale") listStale();
    else if (id === "live-resync") liveResync();
  });
  document.addEventListener("htmx:afterSettle", (evt) => {
    const target = evt.detail && evt.detail.target;
    drain();
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
  document.addEventListener("htmx:historyRestore", watch);
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
    scrollThread();
    updateTitle();
  });
})();
