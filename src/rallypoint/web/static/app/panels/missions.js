// Missions: the Data Sync missions the caller may read; the selected one's contents, its subscription
// (from the API device uid) and its operation plan (objectives, areas, routes, phases on their times);
// "Show on map" draws the plan's GeoJSON export in the missions-* layers.
import { registerPanel } from "./registry.js";
import { button, ensureLayers, poll, problemLine, when, whoAmI } from "./kit.js";

const POLL_MS = 5000;
const SOURCE = "missions-plan";
const COLOUR = "#8e44ad";
const LAYERS = [
  { id: "missions-areas", type: "fill", filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": COLOUR, "fill-opacity": 0.15 } },
  { id: "missions-area-outlines", type: "line", filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "line-color": COLOUR, "line-width": 2 } },
  { id: "missions-routes", type: "line", filter: ["==", ["geometry-type"], "LineString"],
    paint: { "line-color": COLOUR, "line-width": 3, "line-dasharray": [3, 1] } },
  { id: "missions-points", type: "circle", filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-radius": 6, "circle-color": "#fff", "circle-stroke-color": COLOUR, "circle-stroke-width": 3 } },
];
const path = (name, rest = "") => `/api/missions/${encodeURIComponent(name)}${rest}`;

function mount(container, { api, el, view }) {
  const section = container.parentElement;
  const state = { missions: [], selected: null, shownOnMap: null };
  const list = el("ul", { cls: "mission-list", attrs: { "aria-label": "Missions" } });
  const detail = el("div", { cls: "mission-detail", attrs: { "aria-live": "polite" } });
  const listProblem = problemLine();
  container.append(list, listProblem.node, detail);

  let listKey = "";
  async function refresh() {
    try {
      state.missions = await api("/api/missions");
      listProblem.show(null);
    } catch (error) {
      state.missions = [];
      listProblem.show(error);
    }
    const key = JSON.stringify([state.selected, state.missions]);
    if (key === listKey) return;
    listKey = key;
    list.replaceChildren(...state.missions.map((m) => el("li", { cls: "mission" },
      button(m.name, () => choose(m.name), { "aria-pressed": String(m.name === state.selected) }),
      el("span", { cls: "mission-meta", text: `${m.contents_count + m.uids_count} items · by ${m.creator_uid || "?"}` }),
      el("span", { cls: "mission-description", text: m.description || "" }))));
    if (!state.missions.length) list.append(el("li", { text: "none", cls: "empty" }));
    // The chosen mission changed (contents added or removed, or it went away): show it again.
    if (state.selected !== null && !choosing) await showDetail(state.selected);
  }

  let choosing = false;
  async function choose(name) {
    state.selected = name;
    listKey = "";
    choosing = true;
    try { await refresh(); } finally { choosing = false; }
    await showDetail(name);
  }

  async function showDetail(name) {
    const problem = problemLine();
    let mission, plan, subscribed = false;
    try {
      [mission, plan] = await Promise.all([api(path(name)), api(path(name, "/plan"))]);
      const me = await whoAmI(api);
      const subs = await api(path(name, "/subscriptions")).catch(() => []);
      subscribed = subs.some((s) => s.uid === `rallypoint-api-${me.principal ?? "anonymous"}`);
    } catch (error) {
      problem.show(error);
      detail.replaceChildren(problem.node);
      return;
    }
    if (state.selected !== name) return;
    const rows = [["Name", mission.name], ["Description", mission.description || ""],
                  ["Created by", mission.creator_uid || ""], ["Groups", (mission.groups || []).join(", ")],
                  ["Your role", mission.role || "none"], ["Subscribers", mission.subscribers ?? 0]];
    const dl = el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    const contents = el("ul", { cls: "mission-contents", attrs: { "aria-label": "Contents" } },
      ...mission.contents.map((c) => el("li", { text: `file: ${c.name || c.hash}` })),
      ...mission.uids.map((u) => el("li", { text: `item: ${u}` })));
    const subscription = button(subscribed ? "Unsubscribe" : "Subscribe", async () => {
      problem.show(null);
      try {
        if (subscribed) {
          const me = await whoAmI(api);
          await api(path(name, `/subscription?uid=${encodeURIComponent(`rallypoint-api-${me.principal}`)}`),
                    { method: "DELETE" });
        } else {
          await api(path(name, "/subscription"), { method: "PUT", json: {} });
        }
        await showDetail(name);
      } catch (error) { problem.show(error); }
    });
    const onMap = button(state.shownOnMap === name ? "Hide from map" : "Show on map", async () => {
      problem.show(null);
      try {
        if (state.shownOnMap === name) await drawPlan(null); else await drawPlan(name);
        await showDetail(name);
      } catch (error) { problem.show(error); }
    });
    detail.replaceChildren(el("h3", { text: mission.name }), dl,
                           el("h4", { text: `Contents (${mission.contents.length + mission.uids.length})` }), contents,
                           planView(plan), el("div", { cls: "kit-row" }, subscription, onMap), problem.node);
  }

  function planView(version) {
    const plan = version.plan || {};
    const part = (heading, items, line) => items && items.length
      ? [el("h5", { text: heading }), el("ul", {}, ...items.map((i) => el("li", { text: line(i) })))] : [];
    const box = el("section", { cls: "mission-plan", attrs: { "aria-label": "Plan" } },
                   el("h4", { text: version.version ? `Plan v${version.version} by ${version.author}` : "No plan yet" }));
    box.append(
      ...part("Objectives", plan.objectives, (o) => `${o.name} (priority ${o.priority})${o.description ? `: ${o.description}` : ""}`),
      ...part("Areas", plan.areas, (a) => `${a.name} (${a.vertices.length} vertices)`),
      ...part("Routes", plan.routes, (r) => `${r.name} (${r.waypoints.length} waypoints, ${r.method})`),
      ...part("Phases", plan.phases, (p) => `${p.name}: ${when(p.start_ms)} – ${when(p.end_ms)}`
                                            + (p.depends_on.length ? ` after ${p.depends_on.join(", ")}` : "")),
      ...part("Assignments", plan.assignments, (a) => `${a.team}: ${a.role}${a.phase ? ` in ${a.phase}` : ""}`),
      ...part("Resources", plan.resources, (r) => `${r.name}: ${r.quantity} ${r.unit}`));
    return box;
  }

  // The plan's own GeoJSON export, kept to the items with a geometry and to their kind and name.
  async function drawPlan(name) {
    const source = await ensureLayers(view, SOURCE, LAYERS);
    if (name === null) {
      source.setData({ type: "FeatureCollection", features: [] });
      state.shownOnMap = null;
      return;
    }
    const exported = await api(path(name, "/plan/export?format=geojson"));
    const features = exported.features.filter((f) => f.geometry).map((f) => ({
      type: "Feature", geometry: f.geometry, properties: { id: f.id, kind: f.properties.plan_item } }));
    source.setData({ type: "FeatureCollection", features });
    state.shownOnMap = name;
    if (features.length) {
      const bounds = new maplibregl.LngLatBounds();
      for (const f of features) {
        const g = f.geometry;
        const points = g.type === "Point" ? [g.coordinates] : g.type === "LineString" ? g.coordinates : g.coordinates[0];
        for (const p of points) bounds.extend(p);
      }
      view.map.fitBounds(bounds, { padding: 60, maxZoom: 14, duration: 0 });
    }
  }

  poll(section, POLL_MS, refresh);
}

registerPanel({ id: "missions", title: "Missions", order: 20, mount });
