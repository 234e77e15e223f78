// sev's pages: theme toggle, login suggestions, and the live feed. No dependencies.
"use strict";

(function theme() {
  const root = document.documentElement;
  const current = () => root.dataset.theme ||
    (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  const label = () => document.querySelectorAll(".theme-name").forEach((el) => {
    el.textContent = current() === "dark" ? "Dark" : "Light";
  });
  document.querySelectorAll("[data-theme-toggle]").forEach((b) => b.addEventListener("click", () => {
    const next = current() === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    try { localStorage.setItem("sev-theme", next); } catch (e) { /* not saved */ }
    label();
  }));
  label();
})();

// Times arrive in UTC; show them in the viewer's own clock.
function localTime(el) {
  const d = new Date(el.getAttribute("datetime"));
  if (!isNaN(d)) {
    el.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    el.title = d.toLocaleString();
  }
}
document.querySelectorAll("time[datetime]").forEach(localTime);

(function suggestions() {
  const input = document.querySelector("input[data-suggest]");
  if (!input) return;
  const list = document.getElementById(input.getAttribute("aria-controls"));
  let timer = null, asked = "", active = -1;
  const items = () => Array.from(list.querySelectorAll("li"));
  const close = () => { list.hidden = true; list.replaceChildren(); active = -1; };
  const choose = (li) => { input.value = li.dataset.login; close(); input.focus(); };
  const mark = (i) => {
    const all = items();
    active = (i + all.length) % all.length;
    all.forEach((li, j) => li.setAttribute("aria-selected", j === active ? "true" : "false"));
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) { close(); return; }
    timer = setTimeout(async () => {
      asked = q;
      try {
        const res = await fetch(input.dataset.suggest + "?q=" + encodeURIComponent(q), { credentials: "same-origin" });
        const body = await res.json();
        if (asked !== input.value.trim()) return; // typed on meanwhile
        list.replaceChildren(...(body.channels || []).map((c) => {
          const li = document.createElement("li");
          li.setAttribute("role", "option");
          li.dataset.login = c.login;
          const name = document.createElement("span");
          name.textContent = c.display_name + " (" + c.login + ")";
          const meta = document.createElement("span");
          meta.className = "note";
          meta.textContent = c.live ? "live" + (c.category ? " · " + c.category : "") : "offline";
          li.append(name, meta);
          li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(li); });
          return li;
        }));
        list.hidden = list.children.length === 0;
        active = -1;
      } catch (e) { close(); }
    }, 180);
  });
  input.addEventListener("keydown", (e) => {
    if (list.hidden) return;
    if (e.key === "ArrowDown") { e.preventDefault(); mark(active + 1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); mark(active - 1); }
    else if (e.key === "Enter" && active >= 0) { e.preventDefault(); choose(items()[active]); }
    else if (e.key === "Escape") { close(); }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
})();

(function liveFeed() {
  const feed = document.getElementById("feed");
  if (!feed) return;
  const badge = document.getElementById("badge");
  const empty = document.getElementById("feed-empty");
  let cursor = Number(feed.dataset.cursor || "0");
  let retry = 0, gapTimer = null;

  const setBadge = (state, text) => {
    badge.className = "badge " + state;
    badge.textContent = text;
    feed.dataset.state = state;
  };
  const p = (cls, text) => {
    const el = document.createElement("p");
    el.className = cls;
    el.textContent = text;
    return el;
  };

  // The same markup the server renders for history (templates/stream.html).
  function render(e) {
    const li = document.createElement("li");
    li.className = "ev new";
    li.dataset.seq = e.seq;
    li.dataset.kind = e.kind || "unknown";
    li.append(p("ev-text", e.text || "Something happened (" + (e.kind || "unknown") + ")"));
    if (e.message) li.append(p("ev-message", "“" + e.message + "”"));
    if (e.recipients && e.recipients.length) {
      li.append(p("ev-recipients", "To " + e.recipients.map((r) => (r && (r.name || r.login)) || "?").join(", ")));
    }
    const meta = document.createElement("p");
    meta.className = "ev-meta";
    const time = document.createElement("time");
    time.setAttribute("datetime", e.occurred_at);
    localTime(time);
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = e.kind;
    meta.append(time, " · ", kind);
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "Raw event";
    const pre = document.createElement("pre");
    details.addEventListener("toggle", () => {
      if (details.open && !pre.textContent) pre.textContent = JSON.stringify(e, null, 2);
    });
    details.append(summary, pre);
    li.append(meta, details);
    return li;
  }

  function add(li) {
    feed.prepend(li);
    empty.hidden = true;
  }

  function onStatus(e) {
    const pill = document.querySelector(".channel-head .pill");
    if (!pill) return;
    if (e.kind === "stream.online") { pill.className = "pill live"; pill.textContent = "Live"; }
    if (e.kind === "stream.offline") { pill.className = "pill"; pill.textContent = "Offline"; }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = proto + "//" + location.host + "/api/v1/streamers/" + encodeURIComponent(feed.dataset.login) +
      "/live?after=" + cursor;
    const ws = new WebSocket(url);
    ws.onmessage = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.type === "event" && msg.event) {
        if (msg.event.seq <= cursor) return; // already shown
        cursor = msg.event.seq;
        add(render(msg.event));
        onStatus(msg.event);
      } else if (msg.type === "ready") {
        retry = 0;
        if (typeof msg.cursor === "number" && msg.cursor > cursor) cursor = msg.cursor;
        if (!gapTimer) setBadge("live", "Live");
      } else if (msg.type === "gap") {
        const li = document.createElement("li");
        li.className = "ev";
        li.dataset.kind = "gap";
        li.append(p("ev-text", "Some events are missing here: they are older than the history sev keeps."));
        add(li);
        if (typeof msg.next === "number") cursor = Math.max(cursor, msg.next - 1);
        setBadge("gap", "Missed events");
        clearTimeout(gapTimer);
        gapTimer = setTimeout(() => { gapTimer = null; setBadge("live", "Live"); }, 8000);
      }
    };
    ws.onclose = () => {
      setBadge("reconnecting", "Reconnecting…");
      const wait = Math.min(15000, 500 * 2 ** retry) * (0.75 + Math.random() / 2);
      retry += 1;
      setTimeout(connect, wait);
    };
  }
  connect();
})();
