// Airdrop planner panel: the DZ (picked on the map or typed), winds, aircraft and load go to
// POST /api/airdrop/plan; the plan's CARP, run-in, green light, DZ verdict and dispersion are shown
// here and drawn on the map (airdrop-draw.js). The server's refusals are shown as it words them.
// The DZ may also be an area designation (GET /api/designations): its outline, PI at its centroid.
// A plan can be kept in a mission's operation plan (PATCH /api/missions/{name}/plan, kind airdrops).
import { registerPanel } from "./registry.js";
import { AirdropDrawing } from "./airdrop-draw.js";
import { latLonText, mgrsText } from "../coords.js";

// The worked example of docs/airdrop.md: a usable start that people change.
const DEFAULTS = { lat: 9.52, lon: 31.655, elevation: 420, length: 700, width: 500, axis: 250, altitude: 244,
                   speed: 130, runIn: "", parachute: "cargo-example", weight: "", count: 4, exitInterval: 0.5,
                   samples: 2000, seed: 7 };
const DEFAULT_WINDS = [[0, 100, 240, 8], [100, 300, 255, 12]];
const KINDS = ["container", "platform", "bundle"];
// Inline ballistic constants of the load (request field, label): empty ones are the parachute's.
const BALLISTICS = [["rod_sl_mps", "Descent rate at sea level (m/s)"], ["vd_m", "Height lost deploying (m)"],
                    ["tfc_s", "Time to full canopy (s)"], ["exit_time_s", "Exit time (s)"],
                    ["dq_s", "Deceleration time, DQ (s)"]];
const WIND_FIELDS = [["bottom_m", "Bottom (m AGL)"], ["top_m", "Top (m AGL)"], ["from_deg", "From (° true)"],
                     ["speed_kt", "Speed (kt)"]];

registerPanel({ id: "airdrop", title: "Airdrop planner", order: 60, mount });

function mount(root, { api, el, view }) {
  const drawing = new AirdropDrawing(view);
  const input = (id, label, value, attrs = {}) => {
    const field = el("input", { attrs: { id: `airdrop-${id}`, name: id, value, ...attrs } });
    return [el("label", { text: label, attrs: { for: `airdrop-${id}` } }), field];
  };
  const number = (id, label, value, step = "any") => input(id, label, value, { type: "number", step, inputmode: "decimal" });
  const value = (id) => root.querySelector(`#airdrop-${id}`).value.trim();

  const pick = el("button", { text: "Pick DZ centre on map", attrs: { type: "button", "aria-pressed": "false",
                                                                     id: "airdrop-pick" } });
  const centre = el("button", { text: "Use map centre", attrs: { type: "button", id: "airdrop-centre" } });
  const RECTANGLE = el("option", { text: "a rectangle around the PI (below)", attrs: { value: "" } });
  const area = el("select", { attrs: { id: "airdrop-area", name: "area" } }, RECTANGLE);
  const areas = new Map();  // designation id -> its outline, for the request
  const kind = el("select", { attrs: { id: "airdrop-kind", name: "kind" } },
                  ...KINDS.map((k) => el("option", { text: k, attrs: { value: k } })));
  const winds = el("div", { cls: "airdrop-winds", attrs: { id: "airdrop-winds" } });
  const addWind = el("button", { text: "Add wind layer", attrs: { type: "button", id: "airdrop-add-wind" } });
  const spread = el("input", { attrs: { id: "airdrop-dispersion", type: "checkbox", checked: "" } });
  const density = el("input", { attrs: { id: "airdrop-density", type: "checkbox", checked: "" } });
  const run = el("button", { text: "Plan drop", attrs: { type: "submit", id: "airdrop-run" } });
  const error = el("p", { cls: "panel-error", attrs: { id: "airdrop-error", role: "alert" } });
  const result = el("div", { attrs: { id: "airdrop-result", "aria-live": "polite" } });
  const form = el("form", { attrs: { id: "airdrop-form", "aria-label": "Airdrop plan" } },
    el("fieldset", {}, el("legend", { text: "Drop zone" }),
       el("label", { text: "Outline", attrs: { for: "airdrop-area" } }), area, pick, centre,
       ...number("lat", "PI latitude", DEFAULTS.lat), ...number("lon", "PI longitude", DEFAULTS.lon),
       ...number("elevation", "Elevation (m MSL)", DEFAULTS.elevation),
       ...number("length", "Length (m)", DEFAULTS.length), ...number("width", "Width (m)", DEFAULTS.width),
       ...number("axis", "Long axis (° true)", DEFAULTS.axis)),
    el("fieldset", {}, el("legend", { text: "Winds (direction from)" }), winds, addWind),
    el("fieldset", {}, el("legend", { text: "Aircraft" }),
       ...number("altitude", "Release altitude (m AGL)", DEFAULTS.altitude),
       ...number("speed", "Ground speed (kt)", DEFAULTS.speed),
       ...number("run-in", "Run-in (° true, empty: chosen)", DEFAULTS.runIn)),
    el("fieldset", {}, el("legend", { text: "Load" }),
       ...input("parachute", "Parachute", DEFAULTS.parachute),
       ...number("weight", "Weight (kg, optional)", DEFAULTS.weight), ...number("count", "Loads", DEFAULTS.count, "1"),
       el("label", { text: "Kind", attrs: { for: "airdrop-kind" } }), kind,
       ...number("exit-interval", "Seconds between exits", DEFAULTS.exitInterval),
       el("details", { cls: "sub" }, el("summary", { text: "Ballistic constants (override the parachute's)" }),
          ...BALLISTICS.flatMap(([id, label]) => number(id, label, "")))),
    el("fieldset", {}, el("legend", { text: "Model" }),
       el("label", { cls: "inline", attrs: { for: "airdrop-density" } }, density, " Air density correction (ISA)"),
       ...number("wind-limit", "Wind limit (kt, empty: 20)", "")),
    el("fieldset", {}, el("legend", { text: "Dispersion" }),
       el("label", { cls: "inline", attrs: { for: "airdrop-dispersion" } }, spread, " Monte Carlo footprint"),
       ...number("samples", "Samples", DEFAULTS.samples, "1"), ...number("seed", "Seed", DEFAULTS.seed, "1")),
    run, error);
  root.append(form, result);

  function addLayer(values = ["", "", "", ""]) {
    const n = winds.children.length + 1;
    const row = el("div", { cls: "airdrop-wind", attrs: { role: "group", "aria-label": `Wind layer ${n}` } });
    WIND_FIELDS.forEach(([name, label], i) => {
      const id = `airdrop-wind-${n}-${name}`;
      row.append(el("label", { text: label, attrs: { for: id } }),
                 el("input", { attrs: { id, name, type: "number", step: "any", value: values[i] } }));
    });
    const remove = el("button", { text: "Remove", attrs: { type: "button", "aria-label": `Remove wind layer ${n}` } });
    remove.addEventListener("click", () => row.remove());
    row.append(remove);
    winds.append(row);
  }
  DEFAULT_WINDS.forEach((w) => addLayer(w));
  addWind.addEventListener("click", () => addLayer());

  function setCentre(lon, lat) {
    root.querySelector("#airdrop-lat").value = lat.toFixed(6);
    root.querySelector("#airdrop-lon").value = lon.toFixed(6);
    drawing.showPick(lon, lat);
  }
  pick.addEventListener("click", () => pick.setAttribute("aria-pressed", String(pick.getAttribute("aria-pressed") !== "true")));
  view.map.on("click", (e) => {
    if (pick.getAttribute("aria-pressed") !== "true") return;
    pick.setAttribute("aria-pressed", "false");
    const { lat, lng } = e.lngLat.wrap();
    setCentre(lng, lat);
  });
  centre.addEventListener("click", () => { const c = view.map.getCenter().wrap(); setCentre(c.lng, c.lat); });

  // Area designations the caller may see (proposed or approved), read when the panel opens.
  async function loadAreas() {
    let found = [];
    try {
      found = (await api("/api/designations")).filter((d) => d.kind === "area"
                                                         && (d.state === "approved" || d.state === "proposed"));
    } catch {
      return;  // no designations for this caller: the rectangle stays the only outline
    }
    const chosen = area.value;
    areas.clear();
    for (const d of found) areas.set(d.id, d.polygon);
    area.replaceChildren(RECTANGLE, ...found.map((d) => el("option", {
      text: `${d.title} (${d.category}, ${d.state})`, attrs: { value: d.id } })));
    if (areas.has(chosen)) area.value = chosen;
  }
  root.closest("details")?.addEventListener("toggle", (event) => { if (event.target.open) loadAreas(); });
  area.addEventListener("change", () => {
    const outline = areas.get(area.value);
    for (const id of ["length", "width", "axis"]) root.querySelector(`#airdrop-${id}`).disabled = Boolean(outline);
    if (!outline) return;
    // The PI at the outline's vertex centroid (a repeated closing vertex counted once).
    const last = outline[outline.length - 1];
    const ring = last.lat === outline[0].lat && last.lon === outline[0].lon ? outline.slice(0, -1) : outline;
    const lat = ring.reduce((sum, v) => sum + v.lat, 0) / ring.length;
    const lon = ring.reduce((sum, v) => sum + v.lon, 0) / ring.length;
    setCentre(lon, lat);
  });

  // Empty fields are left out so that the server applies its defaults and names what is missing.
  const num = (id) => (value(id) === "" ? undefined : Number(value(id)));
  function request() {
    const windLayers = [...winds.children].map((row) => Object.fromEntries(
      WIND_FIELDS.map(([name]) => [name, Number(row.querySelector(`input[name=${name}]`).value)])));
    const outline = areas.get(area.value);
    const dropZone = outline
      ? { pi: [num("lat"), num("lon")], elevation_m: num("elevation"), polygon: outline.map((v) => [v.lat, v.lon]) }
      : { pi: [num("lat"), num("lon")], elevation_m: num("elevation"), length_m: num("length"),
          width_m: num("width"), axis_deg: num("axis") };
    const body = {
      drop_zone: dropZone,
      aircraft: { altitude_agl_m: num("altitude"), ground_speed_kt: num("speed"), run_in_deg: num("run-in") },
      load: { parachute: value("parachute") || undefined, weight_kg: num("weight"), count: num("count"),
              kind: kind.value, exit_interval_s: num("exit-interval") },
      winds: windLayers,
      options: { density_correction: density.checked, wind_limit_kt: num("wind-limit") },
    };
    for (const [id] of BALLISTICS) body.load[id] = num(id);
    if (spread.checked) body.dispersion = { samples: num("samples"), seed: num("seed") };
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    run.disabled = true;
    try {
      const body = request();
      const plan = await api("/api/airdrop/plan", { method: "POST", json: body });
      show(plan, body);
      await drawing.showPlan(plan);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      run.disabled = false;
    }
  });

  function show(plan, body) {
    const rows = [];
    const row = (term, text, id) => rows.push(el("dt", { text: term }), el("dd", { text, attrs: id ? { id } : {} }));
    row("CARP", latLonText(plan.carp.lat, plan.carp.lon), "airdrop-carp");
    row("CARP MGRS", mgrsText(plan.carp.lat, plan.carp.lon), "airdrop-carp-mgrs");
    row("Run-in", `${plan.run_in_deg.toFixed(1)}° true (${plan.run_in_source})`, "airdrop-run-in-out");
    row("Time of fall", `${plan.time_of_fall_s.toFixed(1)} s`);
    row("Forward travel", `${plan.forward_travel_m.toFixed(0)} m`);
    row("Drift", `${plan.drift_distance_m.toFixed(0)} m (ballistic wind ${plan.ballistic_wind.from_deg.toFixed(0)}° / `
        + `${plan.ballistic_wind.speed_kt.toFixed(1)} kt)`);
    const g = plan.green_light;
    row("Green light", g ? `${g.opens_s.toFixed(1)} s to +${g.closes_s.toFixed(1)} s around the CARP `
        + `(${g.duration_s.toFixed(1)} s)` : "none: no release point lands inside the DZ", "airdrop-green");
    if (g) row("Green from / to", `${latLonText(g.start.lat, g.start.lon)} → ${latLonText(g.end.lat, g.end.lon)}`);
    row("Stick", `${plan.stick.count} loads, ${plan.stick.spacing_m.toFixed(0)} m apart, `
        + `${plan.stick.length_m.toFixed(0)} m long`);
    const dz = plan.dz;
    row("DZ", `${dz.length_m.toFixed(0)} × ${dz.width_m.toFixed(0)} m; needs ${dz.required_length_m.toFixed(0)} × `
        + `${dz.required_width_m.toFixed(0)} m (${dz.rule}): ${dz.fits ? "fits" : "too small"}`, "airdrop-fit");
    const d = plan.dispersion;
    if (d) {
      row("Footprint", `CEP ${d.cep_m.toFixed(0)} m, R95 ${d.r95_m.toFixed(0)} m, P(inside DZ) `
          + `${d.p_inside_dz.toFixed(2)} (${d.samples} samples, seed ${d.seed})`, "airdrop-footprint-out");
    }
    const warnings = el("ul", { attrs: { id: "airdrop-warnings" } },
                        ...(plan.warnings.length ? plan.warnings : ["none"]).map((w) => el("li", { text: w })));
    const assumptions = el("details", {}, el("summary", { text: "Assumptions" }),
                           el("ul", {}, ...plan.assumptions.map((a) => el("li", { text: a }))));
    result.replaceChildren(el("p", { cls: "airdrop-advisory", text: plan.advisory }), el("dl", {}, ...rows),
                           el("h3", { text: "Warnings" }), warnings, assumptions, saveForm(body));
  }

  function saveForm(body) {
    const missions = el("select", { attrs: { id: "airdrop-mission" } });
    const name = el("input", { attrs: { id: "airdrop-save-name", value: "Drop 1", maxlength: "200" } });
    const save = el("button", { text: "Save to mission plan", attrs: { type: "submit" } });
    const said = el("p", { attrs: { id: "airdrop-saved", role: "status" } });
    const form = el("form", { cls: "airdrop-save", attrs: { "aria-label": "Save to a mission" } },
                    el("label", { text: "Mission", attrs: { for: "airdrop-mission" } }), missions,
                    el("label", { text: "Airdrop name", attrs: { for: "airdrop-save-name" } }), name, save, said);
    api("/api/missions").then((list) => {
      missions.replaceChildren(...list.map((m) => el("option", { text: m.name, attrs: { value: m.name } })));
      save.disabled = list.length === 0;
      if (!list.length) said.textContent = "no mission to save into";
    }).catch((err) => { save.disabled = true; said.textContent = err.message; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      said.textContent = "";
      const id = `airdrop-${Date.now().toString(36)}`;
      try {
        const version = await api(`/api/missions/${encodeURIComponent(missions.value)}/plan`, {
          method: "PATCH",
          json: { reason: `airdrop ${name.value} from the web picture`,
                  upsert: { airdrops: [{ id, name: name.value, request: body }] } } });
        said.textContent = `saved as ${id}, plan version ${version.version}`;
      } catch (err) {
        said.textContent = err.message;
      }
    });
    return form;
  }
}
