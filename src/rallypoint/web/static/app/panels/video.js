// Video: the feeds of the registry the caller reads (GET /api/video, polled every 10 s), each with where it
// plays; a feed with a position is drawn on the map (layer video-feeds; a click there opens the panel at
// that feed) and "Show" flies there.
// HLS feeds play in the panel through the server (/api/video/{uid}/hls/{name}), so the page's policy stays
// 'self' and a feed's credentials stay on the server: with hls.js (loaded on the first Play) where the
// browser has Media Source Extensions, else natively where the browser plays HLS itself. Other protocols
// (RTSP, SRT, RTMP, UDP) are for TAK clients and players such as VLC. Names and URLs are set as text only;
// URLs are shown as scheme and host, never with user, password, path or query.
import { registerPanel } from "./registry.js";
import { button, ensureLayers, poll, problemLine } from "./kit.js";

const POLL_MS = 10000;
const SOURCE = "video-feeds";
const LAYERS = [
  { id: "video-feeds", type: "circle",
    paint: { "circle-radius": 7, "circle-color": "#7b2cbf", "circle-stroke-color": "#fff", "circle-stroke-width": 2 } },
];
const HLS_MODULE = "../../vendor/hls.light.esm.js";

/** Where a feed plays: {scheme, host, hls, name} (name: the playlist's file name for HLS feeds). */
export function describe(url) {
  let parsed;
  try { parsed = new URL(url); } catch { return { scheme: "?", host: "", hls: false, name: "" }; }
  const scheme = parsed.protocol.replace(/:$/, "");
  const name = parsed.pathname.split("/").pop() || "";
  const hls = (scheme === "http" || scheme === "https") && name.endsWith(".m3u8");
  return { scheme, host: parsed.host, hls, name: hls ? name : "" };
}

/** The same-origin address of a feed's playlist. */
export function playUrl(feed) {
  return `/api/video/${encodeURIComponent(feed.uid)}/hls/${encodeURIComponent(describe(feed.url).name)}`;
}

function mount(root, { api, el, view }) {
  const section = root.closest("details");
  const problem = problemLine();
  const list = el("ul", { cls: "feed-list video-list", attrs: { id: "video-list", "aria-label": "Video feeds" } });
  const status = el("p", { attrs: { id: "video-status", role: "status" } });
  const player = el("video", { attrs: { id: "video-player", controls: "", muted: "", playsinline: "",
                                        "aria-label": "Video feed" } });
  player.muted = true;  // autoplay after Play is allowed for muted video
  player.hidden = true;
  const stop = button("Stop", () => halt("stopped"), { id: "video-stop" });
  stop.hidden = true;
  root.append(problem.node, list, el("div", { cls: "video-player" }, player, el("div", { cls: "kit-row" }, stop)),
              status);
  let hls = null;
  let shownKey = "";

  function halt(text) {
    if (hls) { hls.destroy(); hls = null; }
    player.pause();
    player.removeAttribute("src");
    player.load();
    player.hidden = true;
    stop.hidden = true;
    player.dataset.feed = "";
    player.dataset.engine = "";
    status.textContent = text;
  }

  async function play(feed) {
    halt("");
    const url = playUrl(feed);
    player.hidden = false;
    stop.hidden = false;
    player.dataset.feed = feed.uid;
    status.textContent = `loading ${feed.alias || feed.uid}`;
    try {
      const { default: Hls } = await import(HLS_MODULE);
      if (Hls.isSupported()) {
        // No worker: the page's policy allows workers from this origin only, not hls.js's blob: worker.
        hls = new Hls({ enableWorker: false, lowLatencyMode: false });
        hls.on(Hls.Events.ERROR, (_event, data) => {
          if (data.fatal) { status.textContent = `cannot play ${feed.alias || feed.uid}: ${data.details}`; }
        });
        hls.loadSource(url);
        hls.attachMedia(player);
        player.dataset.engine = "hls.js";
      } else if (player.canPlayType("application/vnd.apple.mpegurl")) {
        player.src = url;
        player.dataset.engine = "native";
      } else {
        halt("this browser cannot play HLS");
        return;
      }
      status.textContent = `playing ${feed.alias || feed.uid}`;
      await player.play().catch(() => {});
    } catch (error) {
      halt(`cannot play ${feed.alias || feed.uid}: ${error.message}`);
    }
  }

  function feedItem(connection, feed) {
    const where = describe(feed.url);
    const name = feed.alias || connection.alias || feed.uid;
    const actions = [];
    if (where.hls) {
      actions.push(button("Play", () => play(feed), { "aria-label": `Play ${name}`, "data-play": feed.uid }));
    }
    const placed = feed.latitude !== null && feed.longitude !== null;
    if (placed) {
      actions.push(button("Show", () => view.map.flyTo({ center: [feed.longitude, feed.latitude], zoom: 14 }),
                          { "aria-label": `Show ${name} on the map` }));
    }
    const meta = `${where.scheme}${where.host ? ` · ${where.host}` : ""}${feed.active ? "" : " · inactive"}`
      + (where.hls ? "" : " · plays in TAK clients and VLC");
    return el("li", { cls: "video-feed", attrs: { "data-feed": feed.uid } },
              el("div", { cls: "feed-name", text: name }),
              el("div", { cls: "feed-meta", text: meta }),
              el("div", { cls: "feed-meta", text: placed ? `${feed.latitude.toFixed(5)}, ${feed.longitude.toFixed(5)}`
                                                          : "no position" }),
              el("div", { cls: "feed-actions" }, ...actions));
  }

  // A click on a feed's dot opens the panel at that feed (its Play button, else its Show button, takes focus).
  function openAt(e) {
    const uid = e.features?.[0]?.properties?.uid;
    const row = [...list.querySelectorAll("li[data-feed]")].find((li) => li.dataset.feed === uid);
    if (!row) return;
    section.open = true;
    row.querySelector("button")?.focus();
  }

  let clickable = false;
  async function draw(connections) {
    const source = await ensureLayers(view, SOURCE, LAYERS);
    if (!clickable) { view.map.on("click", "video-feeds", openAt); clickable = true; }
    const features = connections.flatMap((c) => c.feeds
      .filter((f) => f.latitude !== null && f.longitude !== null)
      .map((f) => ({ type: "Feature", geometry: { type: "Point", coordinates: [f.longitude, f.latitude] },
                     properties: { uid: f.uid, alias: f.alias || c.alias } })));
    source.setData({ type: "FeatureCollection", features });
  }

  async function refresh() {
    let connections;
    try {
      connections = await api("/api/video");
      problem.show(null);
    } catch (error) {
      problem.show(error);
      return;
    }
    // Redrawn only when something changed: a poll never takes the focus away from a button.
    const key = JSON.stringify(connections.map((c) => [c.uid, c.updated_ms]));
    if (key !== shownKey) {
      shownKey = key;
      const items = connections.flatMap((c) => c.feeds.map((f) => feedItem(c, f)));
      list.replaceChildren(...(items.length ? items : [el("li", { cls: "empty", text: "no video feeds" })]));
    }
    await draw(connections);
  }

  // Feeds on the map are drawn even while the panel is closed; the list is refreshed in the same poll.
  poll(section, POLL_MS, refresh, { always: true });
}

registerPanel({ id: "video", title: "Video", order: 85, mount });
