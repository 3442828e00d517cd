// Small pieces the missions, tasks and designations panels share: labelled fields, a point picked on the
// map or typed, times as people read them, a refusal line, and polling that pauses while a panel is closed.
// Everything a client sent is set with textContent (through el()).
import { el } from "../api.js";

let fieldCount = 0;

/** A <label> and its control, linked by a generated id; returns the wrapper (label then control). */
export function labelled(text, control) {
  if (!control.id) control.id = `kit-field-${++fieldCount}`;
  return el("div", { cls: "kit-field" }, el("label", { text, attrs: { for: control.id } }), control);
}

/** An <input> with attributes. */
export function input(attrs = {}) { return el("input", { attrs }); }

/** A <select> of [value, label] pairs (labels set as text). */
export function select(options, attrs = {}) {
  const node = el("select", { attrs });
  setOptions(node, options);
  return node;
}

/** Replace the options of a <select>, keeping the chosen value when it is still offered. */
export function setOptions(node, options) {
  const kept = node.value;
  node.replaceChildren(...options.map(([value, label]) => el("option", { text: label, attrs: { value } })));
  if (options.some(([value]) => value === kept)) node.value = kept;
}

/** A button that runs ``action`` on click (type=button, so it never submits a form). */
export function button(text, action, attrs = {}) {
  const node = el("button", { text, attrs: { type: "button", ...attrs } });
  node.addEventListener("click", action);
  return node;
}

/** "2026-05-01 14:00:05Z" for epoch milliseconds; "" for none. */
export function when(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}

/** A line that says what the server refused, in its own words (role=alert: read out when it changes). */
export function problemLine() {
  const node = el("p", { cls: "panel-error", attrs: { role: "alert" } });
  return { node, show(error) { node.textContent = error ? (error.message || String(error)) : ""; } };
}

/**
 * A position typed as lat and lon, or picked: "Pick on map" takes the next click on the map, "Map centre"
 * the centre (the keyboard's way). ``value()`` is {lat, lon}, null when both are empty, or throws with the
 * reason when only one is given or a number is out of range.
 */
export function pointField(view, { legend = "Location" } = {}) {
  const lat = input({ type: "number", step: "any", min: "-90", max: "90", inputmode: "decimal" });
  const lon = input({ type: "number", step: "any", min: "-180", max: "180", inputmode: "decimal" });
  const set = ({ lat: y, lng: x }) => { lat.value = y.toFixed(6); lon.value = x.toFixed(6); };
  const pick = button("Pick on map", () => {
    pick.setAttribute("aria-pressed", "true");
    view.map.once("click", (e) => { set(e.lngLat.wrap()); pick.setAttribute("aria-pressed", "false"); });
  }, { "aria-pressed": "false" });
  const centre = button("Map centre", () => set(view.map.getCenter().wrap()));
  const node = el("fieldset", { cls: "kit-point" }, el("legend", { text: legend }),
                  labelled("Latitude", lat), labelled("Longitude", lon), el("div", { cls: "kit-row" }, pick, centre));
  return {
    node,
    clear() { lat.value = ""; lon.value = ""; },
    value() {
      if (lat.value === "" && lon.value === "") return null;
      const y = Number(lat.value), x = Number(lon.value);
      if (lat.value === "" || lon.value === "" || !Number.isFinite(y) || !Number.isFinite(x)) {
        throw new Error("give both latitude and longitude, or neither");
      }
      if (Math.abs(y) > 90 || Math.abs(x) > 180) throw new Error("latitude -90..90, longitude -180..180");
      return { lat: y, lon: x };
    },
  };
}

/**
 * Run ``task`` now and every ``ms`` while ``section`` (the panel's <details>) is open, or always when
 * ``always`` is true; opening the panel runs it at once. Overlapping runs are skipped.
 */
export function poll(section, ms, task, { always = false } = {}) {
  let running = false;
  const run = async () => {
    if (running || !(always || section.open)) return;
    running = true;
    try { await task(); } finally { running = false; }
  };
  section.addEventListener("toggle", () => { if (section.open) run(); });
  setInterval(run, ms);
  run();
  return run;
}

/** The page's login: {principal, role} (nulls when logged out). */
export async function whoAmI(api) {
  try {
    const me = await api("/api/web/session");
    return { principal: me.principal ?? null, role: me.role ?? null };
  } catch {
    return { principal: null, role: null };
  }
}

/** Once the map has loaded, add a GeoJSON source and its layers (when not there already). */
export async function ensureLayers(view, source, layers) {
  await view.ready;
  const map = view.map;
  if (!map.getSource(source)) map.addSource(source, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  for (const layer of layers) if (!map.getLayer(layer.id)) map.addLayer({ ...layer, source });
  return map.getSource(source);
}
