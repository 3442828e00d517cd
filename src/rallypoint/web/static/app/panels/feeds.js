// Feeds panel: every source feed with its state (connected, paused, stopped), counters and rates, read
// from GET /api/feeds every few seconds while the panel is open; pause and resume buttons; the tracker's
// merge proposals with accept and reject. The feeds API is for admins: the server refuses anyone else,
// and the panel then shows the server's answer instead of the list.
import { registerPanel } from "./registry.js";

const REFRESH_MS = 3000;

registerPanel({ id: "feeds", title: "Feeds", order: 80, mount });

/** Per-second rate between two readings of a counter, or null without an earlier reading. */
export function rate(before, after, seconds) {
  if (before === undefined || seconds <= 0) return null;
  return Math.max(0, after - before) / seconds;
}

function mount(root, { api, el }) {
  const status = el("p", { attrs: { id: "feeds-status", role: "status" } });
  const list = el("ul", { cls: "feed-list", attrs: { id: "feeds-list", "aria-label": "Feeds" } });
  const proposals = el("ul", { cls: "feed-list", attrs: { id: "feeds-proposals", "aria-label": "Merge proposals" } });
  const refresh = el("button", { text: "Refresh", attrs: { type: "button", id: "feeds-refresh" } });
  root.append(refresh, status, list, el("h3", { text: "Merge proposals" }), proposals);
  // What the page saw last, per feed: counters and when they last rose (the API gives totals only).
  const seen = new Map();
  const say = (text, error = false) => { status.textContent = text; status.className = error ? "panel-error" : ""; };

  async function act(path, done) {
    try {
      await api(path, { method: "POST" });
      say(done);
      await load();
    } catch (err) {
      say(err.message, true);
    }
  }

  function remember(feed, now) {
    const s = feed.statistics;
    const before = seen.get(feed.name);
    const seconds = before ? (now - before.at) / 1000 : 0;
    const rose = !before || s.observations > before.observations || s.bytes > before.bytes;
    const last = rose && (s.observations || s.bytes) ? now : before?.last ?? null;
    const entry = { at: now, observations: s.observations, bytes: s.bytes, last,
                    obsRate: rate(before?.observations, s.observations, seconds) ?? before?.obsRate ?? null,
                    byteRate: rate(before?.bytes, s.bytes, seconds) ?? before?.byteRate ?? null };
    seen.set(feed.name, entry);
    return entry;
  }

  function item(feed, now) {
    const s = feed.statistics;
    const mark = remember(feed, now);
    const state = feed.error ? `stopped: ${feed.error}` : feed.paused ? "paused"
      : s.connected ? "connected" : "not connected";
    const rejects = Object.entries(s.rejects || {});
    const rejected = rejects.reduce((sum, [, n]) => sum + n, 0);
    const rates = mark.obsRate === null ? "rates after the next refresh"
      : `${mark.obsRate.toFixed(1)} obs/s, ${(mark.byteRate / 1024).toFixed(1)} KB/s`;
    const lastSeen = mark.last ? `data seen ${new Date(mark.last).toLocaleTimeString()}` : "no data seen yet";
    const details = el("dl", { cls: "feed-meta" },
      el("dt", { text: "Observations" }), el("dd", { text: `${s.observations} (${s.bytes} bytes, ${s.documents} documents)` }),
      el("dt", { text: "Rates" }), el("dd", { text: rates }),
      el("dt", { text: "Last data" }), el("dd", { text: lastSeen }),
      el("dt", { text: "Rejects" }), el("dd", { text: rejected ? `${rejected}: ${rejects.map(([r, n]) => `${r} ${n}`).join(", ")}` : "0" }),
      el("dt", { text: "Reconnects" }), el("dd", { text: String(s.reconnects) }),
      el("dt", { text: "Buffered" }), el("dd", { text: `${s.buffered}; dropped ${s.dropped_overflow} overflow, `
                                                        + `${s.dropped_paused} paused` }),
      ...(s.last_error ? [el("dt", { text: "Last error" }), el("dd", { text: s.last_error })] : []));
    const toggle = el("button", { text: feed.paused ? "Resume" : "Pause",
                                  attrs: { type: "button", "aria-label": `${feed.paused ? "Resume" : "Pause"} ${feed.name}` } });
    const name = encodeURIComponent(feed.name);
    toggle.addEventListener("click", () => act(`/api/feeds/${name}/${feed.paused ? "resume" : "pause"}`,
                                               `${feed.name} ${feed.paused ? "resumed" : "paused"}`));
    return el("li", { cls: "feed", attrs: { "data-feed": feed.name } },
              el("div", { cls: "feed-name", text: feed.name }),
              el("div", { cls: "feed-meta", text: `${feed.format}+${feed.transport} · ${feed.url} · groups `
                                                    + feed.groups.join(", ") }),
              el("div", { cls: s.connected && !feed.paused && !feed.error ? "feed-state-on" : "feed-state-off",
                          text: state, attrs: { "data-state": feed.error ? "stopped" : feed.paused ? "paused"
                                                                    : s.connected ? "connected" : "disconnected" } }),
              details, el("div", { cls: "feed-actions" }, toggle));
  }

  function proposal(p) {
    const decide = (verb) => {
      const button = el("button", { text: verb === "accept" ? "Accept" : "Reject",
                                    attrs: { type: "button", "aria-label": `${verb} merge ${p.id}` } });
      button.addEventListener("click", () => act(`/api/feeds/proposals/${encodeURIComponent(p.id)}/${verb}`,
                                                 `merge ${p.id}: ${verb}ed`));
      return button;
    };
    return el("li", {}, el("div", { cls: "feed-name", text: `${p.primary} + ${p.secondary}` }),
              el("div", { cls: "feed-meta", text: `${p.updates} updates together, ${p.distance_m.toFixed(0)} m apart `
                                                    + `since ${new Date(p.since).toLocaleTimeString()}` }),
              el("div", { cls: "feed-actions" }, decide("accept"), decide("reject")));
  }

  async function load() {
    const now = Date.now();
    try {
      const [feeds, open] = await Promise.all([api("/api/feeds"), api("/api/feeds/proposals")]);
      list.replaceChildren(...(feeds.length ? feeds.map((f) => item(f, now))
                                            : [el("li", { cls: "empty", text: "no feeds" })]));
      proposals.replaceChildren(...(open.length ? open.map(proposal)
                                                : [el("li", { cls: "empty", text: "no open proposals" })]));
    } catch (err) {
      list.replaceChildren(el("li", { cls: "panel-error", text: err.message }));
      proposals.replaceChildren();
      // Refused (not an admin, or logged out): asking again every few seconds would change nothing.
      if (err.status === 401 || err.status === 403) stopRefresh();
    }
  }

  const section = root.closest("details");
  let timer = null;
  // Refreshed only while the panel is open and the page visible: a closed panel costs no requests.
  function stopRefresh() { clearInterval(timer); timer = null; }
  function schedule() {
    stopRefresh();
    if (section?.open) {
      load();
      timer = setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
    }
  }
  section?.addEventListener("toggle", schedule);
  refresh.addEventListener("click", () => load());
}
