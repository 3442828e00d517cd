// Tasks: the tasks the caller may see with their state, assignee and due time, followed by polling
// /api/tasks (the live feed carries no task messages); a new task for a contact of the picture or a team,
// with an optional place picked on the map, due time and mission; a state change with a note.
import { registerPanel } from "./registry.js";
import { button, ensureLayers, input, labelled, pointField, poll, problemLine, select, setOptions, when, whoAmI }
  from "./kit.js";

const POLL_MS = 3000;
const STATES = ["assigned", "acknowledged", "in_progress", "done", "failed", "cancelled"];
const FINAL = new Set(["done", "failed", "cancelled"]);
// Task places on the map, coloured as the server colours its task markers for TAK clients.
const LAYERS = [
  { id: "tasks-points", type: "circle",
    paint: { "circle-radius": 6, "circle-stroke-color": "#222", "circle-stroke-width": 1.5,
             "circle-color": ["match", ["get", "state"], "done", "#2ca02c", "failed", "#d62728", "cancelled", "#999",
                              "#ffd84d"] } },
];

/** The assignee as people read it: a uid known to the picture by its callsign. */
function assigneeText(a, picture) {
  if (a.group) return `team ${a.group}`;
  if (a.callsign) return a.callsign;
  const callsign = picture.units.get(a.uid)?.feature.properties.callsign;
  return callsign ? `${callsign} (${a.uid})` : a.uid || "";
}

/** Contacts of the picture: units with a callsign whose type is an atom (a-...), as [uid, callsign]. */
function contacts(picture) {
  const found = [];
  for (const [uid, unit] of picture.units) {
    const p = unit.feature.properties;
    if (p.callsign && (p.type || "").startsWith("a-")) found.push([uid, p.callsign]);
  }
  return found.sort((a, b) => a[1].localeCompare(b[1]));
}

function mount(container, { api, el, view, picture }) {
  const section = container.parentElement;
  const state = { tasks: [], selected: null, missions: [] };
  const list = el("ul", { cls: "task-list", attrs: { "aria-label": "Tasks" } });
  const detail = el("div", { cls: "task-detail", attrs: { "aria-live": "polite" } });
  const listProblem = problemLine();

  // The form for a new task.
  const what = input({ maxlength: "500", required: "" });
  const details = el("textarea", { attrs: { maxlength: "4000", rows: "2" } });
  const priority = select([1, 2, 3, 4, 5].map((p) => [String(p), p === 1 ? "1 (most urgent)" : String(p)]));
  priority.value = "3";
  const contact = select([["", "(a team instead)"]]);
  const team = input({ maxlength: "128", placeholder: "group name" });
  const due = input({ type: "datetime-local" });
  const mission = select([["", "(none)"]]);
  const where = pointField(view, { legend: "Location (optional)" });
  const formProblem = problemLine();
  const form = el("form", { cls: "task-form", attrs: { "aria-label": "New task" } },
                  labelled("Task", what), labelled("Details", details), labelled("Priority", priority),
                  labelled("Assignee (contact)", contact), labelled("or team", team),
                  where.node, labelled("Due (local time)", due), labelled("Mission", mission),
                  el("button", { text: "Assign", attrs: { type: "submit" } }), formProblem.node);
  const newTask = el("details", { cls: "sub" }, el("summary", { text: "New task" }), form);
  // Contacts and missions are read when the form is opened, so the choice is today's picture.
  newTask.addEventListener("toggle", () => { if (newTask.open) fillChoices(); });
  contact.addEventListener("focus", () => setOptions(contact, [["", "(a team instead)"], ...contacts(picture)]));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formProblem.show(null);
    try {
      const assignee = contact.value ? { uid: contact.value } : team.value.trim() ? { group: team.value.trim() } : null;
      if (!assignee) throw new Error("choose a contact or name a team");
      const body = { what: what.value, assignee, priority: Number(priority.value) };
      if (details.value.trim()) body.details = details.value;
      const point = where.value();
      if (point) body.where = point;
      if (due.value) body.due_ms = new Date(due.value).getTime();
      if (mission.value) body.mission = mission.value;
      const made = await api("/api/tasks", { method: "POST", json: body });
      what.value = ""; details.value = ""; priority.value = "3"; team.value = ""; due.value = ""; where.clear();
      state.selected = made.id;
      await refresh();
    } catch (error) { formProblem.show(error); }
  });

  container.append(list, listProblem.node, detail, newTask);

  async function fillChoices() {
    setOptions(contact, [["", "(a team instead)"], ...contacts(picture)]);
    try {
      state.missions = await api("/api/missions");
    } catch { state.missions = []; }
    setOptions(mission, [["", "(none)"], ...state.missions.map((m) => [m.name, m.name])]);
  }

  async function refresh() {
    const me = await whoAmI(api);
    try {
      if (!me.principal) throw new Error("log in to see tasks");
      state.tasks = await api("/api/tasks?limit=200");
      listProblem.show(null);
    } catch (error) {
      state.tasks = [];
      listProblem.show(error);
    }
    show();
  }

  // Redrawn only when a task changed, so a poll never takes the focus or a half-typed note away.
  let shownKey = "";
  function show() {
    const selected = state.tasks.find((t) => t.id === state.selected);
    const key = JSON.stringify([state.selected, state.tasks.map((t) => [t.id, t.version])]);
    if (key === shownKey) return;
    shownKey = key;
    list.replaceChildren(...state.tasks.map((t) => el("li", { cls: `task state-${t.state}`, attrs: { "data-id": t.id } },
      button(t.what, () => { state.selected = t.id; show(); }, { "aria-pressed": String(t.id === state.selected) }),
      el("span", { cls: "badge task-state", text: t.state.replace("_", " ") }),
      el("span", { cls: "task-meta", text: `P${t.priority ?? 3} · ${assigneeText(t.assignee, picture)}${t.due_ms ? ` · due ${when(t.due_ms)}` : ""}` }))));
    if (!state.tasks.length) list.append(el("li", { text: "none", cls: "empty" }));
    showDetail(selected);
    draw();
  }

  async function draw() {
    const source = await ensureLayers(view, "tasks", LAYERS);
    source.setData({ type: "FeatureCollection", features: state.tasks.filter((t) => t.where).map((t) => ({
      type: "Feature", geometry: { type: "Point", coordinates: [t.where.lon, t.where.lat] },
      properties: { id: t.id, state: t.state } })) });
  }

  function showDetail(t) {
    if (!t) { detail.replaceChildren(); return; }
    const rows = [["Task", t.what], ["Details", t.details || ""], ["Priority", t.priority ?? 3],
                  ["State", t.state.replace("_", " ")], ["Assignee", assigneeText(t.assignee, picture)],
                  ["Creator", t.creator], ["Due", when(t.due_ms) || "–"]];
    if (t.where) rows.push(["Lat, lon", `${t.where.lat.toFixed(5)}, ${t.where.lon.toFixed(5)}`]);
    if (t.mission) rows.push(["Mission", t.mission]);
    const history = el("ol", { cls: "task-history", attrs: { "aria-label": "History" } },
      ...t.history.map((h) => el("li", { text: `${h.state.replace("_", " ")} by ${h.by} via ${h.via} ${when(h.at_ms)}`
                                               + (h.note ? `: ${h.note}` : "") })));
    const parts = [el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])), history];
    if (!FINAL.has(t.state)) parts.push(changeForm(t));
    detail.replaceChildren(...parts);
  }

  function changeForm(t) {
    // Only forward moves (the lifecycle has no way back); steps may be skipped.
    const next = select(STATES.slice(STATES.indexOf(t.state) + 1).map((s) => [s, s.replace("_", " ")]));
    const note = input({ maxlength: "500" });
    const problem = problemLine();
    const go = button("Change status", async () => {
      problem.show(null);
      try {
        await api(`/api/tasks/${encodeURIComponent(t.id)}/status`, { method: "POST",
                                                                  json: { state: next.value, note: note.value } });
        await refresh();
      } catch (error) { problem.show(error); }
    });
    return el("div", { cls: "task-change" }, labelled("New status", next), labelled("Note", note), go, problem.node);
  }

  poll(section, POLL_MS, refresh);
}

registerPanel({ id: "tasks", title: "Tasks", order: 30, mount });
