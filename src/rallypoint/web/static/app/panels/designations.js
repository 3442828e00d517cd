// Designations: the list the caller may see, a proposal (a point picked on the map), approve or reject under
// the two-person rule (buttons for approvers; the server decides and its refusal is shown as it words it),
// the record of the selected one, and every proposed or approved designation drawn on the map.
import { registerPanel } from "./registry.js";
import { button, ensureLayers, input, labelled, pointField, poll, problemLine, select, when, whoAmI } from "./kit.js";

const POLL_MS = 4000;
const SOURCE = "designations";
const COLOURS = { friend: "#1e6fd9", hostile: "#d62728", neutral: "#2ca02c", unknown: "#e6b400" };
const COLOUR = ["match", ["get", "affiliation"], ...Object.entries(COLOURS).flat(), "#888"];
const PROPOSED = ["==", ["get", "state"], "proposed"];
// Approved: a solid disc and a filled area. Proposed: a hollow ring and a faint, thin outline.
const LAYERS = [
  { id: "designations-areas", type: "fill", filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": COLOUR, "fill-opacity": ["case", PROPOSED, 0.08, 0.28] } },
  { id: "designations-outlines", type: "line", filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "line-color": COLOUR, "line-width": ["case", PROPOSED, 1.5, 3] } },
  { id: "designations-points", type: "circle", filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-radius": ["case", PROPOSED, 9, 7], "circle-color": COLOUR,
             "circle-opacity": ["case", PROPOSED, 0, 0.9], "circle-stroke-color": COLOUR,
             "circle-stroke-width": ["case", PROPOSED, 3, 2] } },
];
const CATEGORIES = ["casualty", "hazard", "landing_site", "drop_zone", "watch", "obstacle", "vessel", "aircraft", "other"];
const SHOWN_STATES = new Set(["proposed", "approved"]);

function feature(d) {
  const properties = { id: d.id, state: d.state, affiliation: d.affiliation };
  const geometry = d.kind === "area"
    ? { type: "Polygon", coordinates: [[...d.polygon, d.polygon[0]].map((v) => [v.lon, v.lat])] }
    : { type: "Point", coordinates: [d.point.lon, d.point.lat] };
  return { type: "Feature", geometry, properties };
}

function mount(container, { api, el, view }) {
  const section = container.parentElement;
  const state = { items: [], selected: null, me: { principal: null, role: null } };
  const list = el("ul", { cls: "designation-list", attrs: { "aria-label": "Designations" } });
  const detail = el("div", { cls: "designation-detail", attrs: { "aria-live": "polite" } });
  const listProblem = problemLine();
  const filter = select([["", "all"], ["proposed", "proposed"], ["approved", "approved"], ["rejected", "rejected"],
                         ["withdrawn", "withdrawn"]]);
  filter.addEventListener("change", () => { show(); });

  // The proposal form.
  const title = input({ maxlength: "120", required: "" });
  const category = select(CATEGORIES.map((c) => [c, c.replace("_", " ")]));
  const affiliation = select(["unknown", "friend", "hostile", "neutral"].map((a) => [a, a]));
  const priority = select([1, 2, 3, 4, 5].map((p) => [String(p), p === 1 ? "1 (most urgent)" : String(p)]));
  priority.value = "3";
  const notes = el("textarea", { attrs: { maxlength: "4000", rows: "2" } });
  const where = pointField(view);
  const formProblem = problemLine();
  const form = el("form", { cls: "designation-form", attrs: { "aria-label": "Propose a designation" } },
                  labelled("Name", title), labelled("Category", category), labelled("Affiliation", affiliation),
                  labelled("Priority", priority), labelled("Remarks", notes), where.node,
                  el("button", { text: "Propose", attrs: { type: "submit" } }), formProblem.node);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formProblem.show(null);
    try {
      const point = where.value();
      if (!point) throw new Error("pick the designation's point on the map, or type it");
      const made = await api("/api/designations", { method: "POST", json: {
        title: title.value, category: category.value, affiliation: affiliation.value,
        priority: Number(priority.value), notes: notes.value, point } });
      title.value = ""; notes.value = ""; where.clear();
      state.selected = made.id;
      await refresh();
    } catch (error) { formProblem.show(error); }
  });

  container.append(
    labelled("Show", filter), list, listProblem.node, detail,
    el("details", { cls: "sub" }, el("summary", { text: "Propose a designation" }), form));

  async function refresh() {
    state.me = await whoAmI(api);
    try {
      if (!state.me.principal) throw new Error("log in to see designations");
      state.items = await api("/api/designations");
      listProblem.show(null);
    } catch (error) {
      state.items = [];
      listProblem.show(error.status === 401 ? new Error("log in to see designations") : error);
    }
    show();
    draw();
  }

  // Redrawn only when something shown changed, so a poll never takes the focus or a half-typed reason away.
  let shownKey = "";
  function show() {
    const shown = state.items.filter((d) => !filter.value || d.state === filter.value);
    const selected = state.items.find((d) => d.id === state.selected);
    const key = JSON.stringify([filter.value, state.selected, selected?.updated_ms, state.me,
                                shown.map((d) => [d.id, d.state, d.updated_ms])]);
    if (key === shownKey) return;
    shownKey = key;
    list.replaceChildren(...shown.map((d) => {
      const pick = button(`${d.title}`, () => { state.selected = d.id; show(); },
                          { "aria-pressed": String(d.id === state.selected), "data-id": d.id });
      return el("li", { cls: `designation state-${d.state}` }, pick,
                el("span", { cls: "badge", text: d.state }));
    }));
    if (!shown.length) list.append(el("li", { text: "none", cls: "empty" }));
    showDetail(selected);
  }

  function showDetail(d) {
    if (!d) { detail.replaceChildren(); return; }
    const rows = [["Name", d.title], ["State", d.state], ["Category", d.category.replace("_", " ")],
                  ["Affiliation", d.affiliation], ["Priority", d.priority], ["Remarks", d.notes],
                  ["Lat, lon", `${d.point.lat.toFixed(5)}, ${d.point.lon.toFixed(5)}`]];
    if (d.mission) rows.push(["Mission", d.mission]);
    const dl = el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    // The record: who proposed it, who decided, when, and why (for a rejection).
    const trail = el("ol", { cls: "designation-trail", attrs: { "aria-label": "Record" } },
                     el("li", { text: `proposed by ${d.proposer} (${d.proposer_groups.join(", ")}) ${when(d.proposed_ms)}` }));
    if (d.state !== "proposed") {
      const by = d.decided_by || d.approver || "";
      const shared = d.state === "approved" ? `, shared with ${d.shared_groups.join(", ")}` : "";
      const reason = d.reason ? `: ${d.reason}` : "";
      trail.append(el("li", { text: `${d.state} by ${by} ${when(d.updated_ms)}${shared}${reason}` }));
    }
    detail.replaceChildren(el("h3", { text: d.title }), dl, trail, ...actions(d));
  }

  function actions(d) {
    if (d.state !== "proposed") return [];
    const problem = problemLine();
    const act = (path, json) => async () => {
      problem.show(null);
      try {
        await api(`/api/designations/${d.id}${path}`, { method: path ? "POST" : "DELETE", json });
        await refresh();
      } catch (error) { problem.show(error); }
    };
    const out = [];
    if (state.me.role === "approver") {
      const groups = input({ placeholder: "the proposer's" });
      const reason = input({ maxlength: "500" });
      const shareWith = () => groups.value.split(",").map((g) => g.trim()).filter(Boolean);
      out.push(el("div", { cls: "designation-decide" },
        labelled("Share with groups (comma-separated)", groups),
        button("Approve", async () => {
          const chosen = shareWith();
          await act("/approve", chosen.length ? { groups: chosen } : {})();
        }),
        labelled("Reason for rejecting", reason),
        button("Reject", async () => {
          if (!reason.value.trim()) { problem.show(new Error("say why it is rejected")); return; }
          await act("/reject", { reason: reason.value })();
        })));
    } else {
      out.push(el("p", { cls: "designation-rule",
                         text: "Two-person rule: another account with the approver role approves or rejects it." }));
    }
    if (d.proposer === state.me.principal) out.push(button("Withdraw", act("", undefined)));
    out.push(problem.node);
    return out;
  }

  // A designation clicked on the map is chosen in the panel (and the panel opened).
  let clickable = false;
  function listenForClicks() {
    if (clickable) return;
    clickable = true;
    for (const layer of ["designations-points", "designations-areas"]) {
      view.map.on("click", layer, (e) => {
        state.selected = e.features[0].properties.id;
        section.open = true;
        show();
      });
    }
  }

  async function draw() {
    const source = await ensureLayers(view, SOURCE, LAYERS);
    listenForClicks();
    const drawn = state.items.filter((d) => SHOWN_STATES.has(d.state)).map(feature);
    source.setData({ type: "FeatureCollection", features: drawn });
  }

  // The map keeps showing designations while the panel is closed, so the list is kept fresh always.
  poll(section, POLL_MS, refresh, { always: true });
}

registerPanel({ id: "designations", title: "Designations", order: 40, mount });
