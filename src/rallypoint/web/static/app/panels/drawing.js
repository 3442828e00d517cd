// Drawing: place a spot marker, draw a line, polygon, circle or route, and send it to TAK clients as
// ATAK would (POST /api/items; docs/web.md "Drawing"). Click the map to add points (or press Enter on
// the focused map to add its centre); double-click or Finish (Enter in the panel) ends a line, polygon
// or route; Escape cancels. The items you drew are listed to edit (name, colour, remarks) or delete.
import { registerPanel } from "./registry.js";
import { distanceM } from "../measure.js";

const TOOLS = [
  { kind: "marker", label: "Marker", points: 1, hint: "click the map where the marker goes" },
  { kind: "line", label: "Line", points: 2, hint: "click each vertex, then Finish (or double-click)" },
  { kind: "polygon", label: "Polygon", points: 3, hint: "click each corner, then Finish (or double-click)" },
  { kind: "circle", label: "Circle", points: 2, hint: "click the centre, then a point on the edge" },
  { kind: "route", label: "Route", points: 2, hint: "click each waypoint, then Finish (or double-click)" },
];
const KIND_OF_TYPE = { "b-m-p-s-m": "marker", "u-d-c-c": "circle", "u-d-r": "rectangle", "b-m-r": "route" };
const PREVIEW = "drawing-preview";
const EMPTY = { type: "FeatureCollection", features: [] };

registerPanel({ id: "drawing", title: "Draw", order: 15, mount });

function mount(body, { api, el, view }) {
  const state = { tool: null, points: [], editing: null };
  const name = el("input", { attrs: { id: "draw-name", maxlength: 100, value: "Marker 1", autocomplete: "off" } });
  const colour = el("input", { attrs: { id: "draw-colour", type: "color", value: "#ff0000" } });
  const remarks = el("textarea", { attrs: { id: "draw-remarks", rows: 2, maxlength: 2000 } });
  const status = el("p", { attrs: { id: "draw-status", role: "status", "aria-live": "polite" } });
  const finish = el("button", { text: "Finish", attrs: { type: "button", id: "draw-finish", disabled: "" } });
  const cancel = el("button", { text: "Cancel", attrs: { type: "button", id: "draw-cancel", disabled: "" } });
  const save = el("button", { text: "Save changes", attrs: { type: "button", id: "draw-save", hidden: "" } });
  const list = el("ul", { cls: "drawing-list", attrs: { id: "draw-items", "aria-label": "Items you drew" } });
  const refresh = el("button", { text: "Refresh", attrs: { type: "button", id: "draw-refresh" } });
  const buttons = TOOLS.map((tool) => {
    const button = el("button", { text: tool.label, attrs: { type: "button", id: `draw-${tool.kind}`,
                                                              "aria-pressed": "false", title: tool.hint } });
    button.addEventListener("click", () => choose(tool));
    return button;
  });
  body.append(
    el("div", { cls: "kit-row", attrs: { role: "group", "aria-label": "Drawing tools" } }, ...buttons),
    el("label", { text: "Name", attrs: { for: "draw-name" } }), name,
    el("label", { text: "Colour", attrs: { for: "draw-colour" } }), colour,
    el("label", { text: "Remarks", attrs: { for: "draw-remarks" } }), remarks,
    el("div", { cls: "kit-row" }, finish, cancel, save), status,
    el("h3", { text: "Your items" }), refresh, list,
  );

  const map = view.map;
  view.ready.then(() => {
    map.addSource(PREVIEW, { type: "geojson", data: EMPTY });
    map.addLayer({ id: PREVIEW, type: "line", source: PREVIEW,
                   paint: { "line-color": "#ff9f1a", "line-width": 2, "line-dasharray": [2, 1] } });
    map.addLayer({ id: `${PREVIEW}-points`, type: "circle", source: PREVIEW,
                   paint: { "circle-radius": 4, "circle-color": "#ff9f1a" } });
  });

  function choose(tool) {
    const on = state.tool !== tool;
    reset();
    if (!on) return;
    state.tool = tool;
    buttons[TOOLS.indexOf(tool)].setAttribute("aria-pressed", "true");
    cancel.disabled = false;
    if (!name.value.trim() || TOOLS.some((t) => name.value === `${t.label} 1`)) name.value = `${tool.label} 1`;
    say(tool.hint);
    map.doubleClickZoom.disable();
  }

  function reset() {
    state.tool = null;
    state.points = [];
    for (const b of buttons) b.setAttribute("aria-pressed", "false");
    finish.disabled = cancel.disabled = true;
    map.doubleClickZoom.enable();
    preview();
  }

  function say(text, error = false) {
    status.textContent = text;
    status.className = error ? "panel-error" : "";
  }

  function add(point) {
    const tool = state.tool;
    if (!tool) return;
    state.points.push(point);
    preview();
    if (tool.kind === "marker" || (tool.kind === "circle" && state.points.length === 2)) { send(); return; }
    finish.disabled = state.points.length < tool.points;
    say(`${state.points.length} point${state.points.length === 1 ? "" : "s"}: ${tool.hint}`);
  }

  function preview() {
    const source = map.getSource(PREVIEW);
    if (!source) return;
    const pts = state.points, features = pts.map((p) => ({ type: "Feature", properties: {},
                                                           geometry: { type: "Point", coordinates: p } }));
    if (pts.length > 1) {
      const line = state.tool?.kind === "polygon" ? [...pts, pts[0]] : pts;
      features.push({ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: line } });
    }
    source.setData({ type: "FeatureCollection", features });
  }

  async function send() {
    const tool = state.tool;
    if (!tool || state.points.length < tool.points) return;
    const item = { kind: tool.kind, name: name.value.trim(), color: colour.value, remarks: remarks.value,
                   coordinates: tool.kind === "circle" ? [state.points[0]] : state.points };
    if (tool.kind === "circle") item.radius_m = Math.max(1, Math.round(distanceM(state.points[0], state.points[1])));
    reset();
    await put(item, `${tool.label} sent`);
  }

  async function put(item, done) {
    try {
      const answer = await api("/api/items", { method: "POST", json: item });
      say(`${done}: ${answer.recipients} recipient${answer.recipients === 1 ? "" : "s"}`);
      await load();
    } catch (error) {
      say(`not sent: ${error.message}`, true);
    }
  }

  async function load() {
    let items;
    try {
      items = await api("/api/items");
    } catch (error) {
      list.replaceChildren(el("li", { cls: "empty", text: error.message }));
      return;
    }
    list.replaceChildren(...(items.length ? items.map(row) : [el("li", { cls: "empty", text: "none yet" })]));
  }

  function row(item) {
    const edit = el("button", { text: "Edit", attrs: { type: "button", "aria-label": `Edit ${item.callsign || item.uid}` } });
    const remove = el("button", { text: "Delete",
                                  attrs: { type: "button", "aria-label": `Delete ${item.callsign || item.uid}` } });
    edit.addEventListener("click", () => startEdit(item));
    remove.addEventListener("click", async () => {
      try {
        await api(`/api/items/${encodeURIComponent(item.uid)}`, { method: "DELETE" });
        say(`${item.callsign || item.uid} deleted`);
      } catch (error) {
        say(`not deleted: ${error.message}`, true);
      }
      await load();
    });
    return el("li", { cls: "drawing-item", attrs: { "data-uid": item.uid } },
              el("span", { text: item.callsign || item.uid }), el("span", { cls: "badge", text: kindOf(item) }),
              edit, remove);
  }

  function startEdit(item) {
    reset();
    state.editing = item;
    name.value = item.callsign || "";
    colour.value = item.drawing?.stroke || "#ff0000";
    remarks.value = item.drawing?.remarks || "";
    save.hidden = false;
    say(`editing ${item.callsign || item.uid}: change name, colour or remarks, then Save changes`);
  }

  save.addEventListener("click", async () => {
    const item = state.editing;
    if (!item) return;
    save.hidden = true;
    state.editing = null;
    const kind = kindOf(item), shape = geometryOf(item, kind);
    if (!shape) { say("this item cannot be edited here", true); return; }
    await put({ uid: item.uid, kind, name: name.value.trim(), color: colour.value, remarks: remarks.value, ...shape },
              "changes sent");
  });
  finish.addEventListener("click", send);
  cancel.addEventListener("click", () => { reset(); say("cancelled"); });
  refresh.addEventListener("click", load);
  body.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.tool) { reset(); say("cancelled"); }
    if (e.key === "Enter" && state.tool && !finish.disabled && e.target.tagName !== "TEXTAREA") {
      e.preventDefault();
      send();
    }
  });
  map.on("click", (e) => { if (state.tool) add([e.lngLat.lng, e.lngLat.lat]); });
  map.on("dblclick", (e) => {
    if (!state.tool) return;
    e.preventDefault();
    // The double-click's two clicks each added the same point: keep one, then finish.
    const pts = state.points;
    if (pts.length > 1 && pts[pts.length - 1][0] === pts[pts.length - 2][0]
        && pts[pts.length - 1][1] === pts[pts.length - 2][1]) pts.pop();
    send();
  });
  map.getContainer().addEventListener("keydown", (e) => {
    if (!state.tool) return;
    if (e.key === "Enter") { const c = map.getCenter(); add([c.lng, c.lat]); }
    if (e.key === "Escape") { reset(); say("cancelled"); }
  });
  // The list follows the session: it is read whenever the panel is opened.
  body.closest("details")?.addEventListener("toggle", (e) => { if (e.target.open) load(); });
}

function kindOf(item) {
  if (item.type === "u-d-f") return item.drawing?.geometry === "Polygon" ? "polygon" : "line";
  return KIND_OF_TYPE[item.type] || "item";
}

// The geometry part of an edit: the item keeps where it is.
function geometryOf(item, kind) {
  const d = item.drawing, p = item.position;
  switch (kind) {
    case "marker": return p ? { coordinates: [[p.lon, p.lat]] } : null;
    case "circle": {
      if (!p || !d?.coordinates) return null;
      const centre = [p.lon, p.lat];
      return { coordinates: [centre], radius_m: Math.max(1, Math.round(distanceM(centre, d.coordinates[0][0]))) };
    }
    case "polygon": case "rectangle": return d?.coordinates ? { coordinates: d.coordinates[0].slice(0, -1) } : null;
    case "line": case "route": return d?.coordinates ? { coordinates: d.coordinates } : null;
    default: return null;
  }
}
