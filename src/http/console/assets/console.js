// The console's script: the live board (Server-Sent Events from /live/events), rendered with
// textContent only, so a caller's words can never become markup.
(function () {
  "use strict";
  const csrf = document.body.dataset.csrf || "";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function elapsed(startMs) {
    if (!startMs) return "";
    const s = Math.max(0, Math.floor((Date.now() - startMs) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function hangupForm(sid) {
    const f = el("form");
    f.method = "post";
    f.action = "/live/" + encodeURIComponent(sid) + "/hangup";
    const t = el("input");
    t.type = "hidden"; t.name = "_csrf"; t.value = csrf;
    const b = el("button", "hangup", "Hang up");
    b.type = "submit";
    f.append(t, b);
    return f;
  }

  function render(board, calls) {
    board.replaceChildren();
    if (!calls.length) {
      board.append(el("p", "muted empty", "No calls in progress."));
      return;
    }
    for (const c of calls) {
      const box = el("section", "live-call");
      box.dataset.sid = c.sid;
      const head = el("header");
      head.append(
        el("strong", "lead", c.lead),
        el("span", "campaign muted", c.campaign || ""),
        el("span", "node", "node: " + (c.node || "-")),
        el("span", "elapsed", elapsed(c.started_at_ms)),
        el("span", "status muted", c.outcome ? c.status + " · " + c.outcome : c.status),
      );
      head.querySelector(".elapsed").dataset.start = c.started_at_ms || "";
      if (c.status === "in-progress") head.append(hangupForm(c.sid));
      const list = el("div", "live-transcript");
      for (const t of c.turns) {
        const p = el("p", "live-turn " + t.speaker);
        p.append(el("span", "who", t.speaker), document.createTextNode(" " + t.text));
        if (t.interrupted) p.append(el("em", "", " (interrupted)"));
        if (t.latency_ms != null) p.append(el("span", "latency", " · " + t.latency_ms + " ms"));
        list.append(p);
      }
      box.append(head, list);
      board.append(box);
    }
  }

  function live(board) {
    const feed = new EventSource(board.dataset.feed);
    feed.addEventListener("calls", (e) => render(board, JSON.parse(e.data)));
    setInterval(() => {
      for (const s of board.querySelectorAll(".elapsed")) s.textContent = elapsed(Number(s.dataset.start));
    }, 1000);
  }

  // Exposed for the softphone: follow one call's transcript.
  window.consoleLive = { render, feed: (board) => live(board) };

  document.addEventListener("DOMContentLoaded", () => {
    const board = document.getElementById("live");
    if (board) live(board);
    const chat = document.getElementById("chat");
    if (chat) chat.scrollTop = chat.scrollHeight;
  });
})();
