// Contacts: the TAK clients of the picture (callsign, team, role, last report, stale), grouped by team, with a
// search box and a "Zoom to" button per contact that flies the map there and selects it. The list follows the
// Picture by comparing it once a second: only rows whose report changed are rewritten, and rows are moved
// between teams rather than the whole list redrawn. Every client-sent string is set with textContent (el()).
import { registerPanel } from "./registry.js";

const REFRESH_MS = 1000;
// Roles are not on the live feed: /api/clients is asked again at most this often, when new contacts appear.
const ROLES_EVERY_MS = 5000;
const NO_TEAM = "No team";
const ZOOM = 14;

/** "12 s ago", "3 min ago", "2 h ago" for a report at ``ms``. */
export function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** Fly the map to a unit of the picture and select it (the contacts and emergency panels share this). */
export function zoomTo({ picture, view, select }, uid, position = null) {
  const unit = picture.units.get(uid);
  const where = position || unit?.feature.geometry?.coordinates;
  if (where) view.map.flyTo({ center: [where[0], where[1]], zoom: Math.max(view.map.getZoom(), ZOOM) });
  if (unit) select(uid);
}

function mount(container, context) {
  const { picture, el, api } = context;
  const section = container.parentElement;
  const search = el("input", { attrs: { id: "contacts-search", type: "search", placeholder: "callsign, team or role",
                                        autocomplete: "off" } });
  const count = el("p", { cls: "contacts-count", attrs: { "aria-live": "polite" } });
  const teams = el("div", { cls: "contacts-teams" });
  container.append(el("label", { text: "Search contacts", attrs: { for: "contacts-search" } }), search, count, teams);

  const rows = new Map();     // uid -> { node, callsign, team, role, report, stale, fields... }
  const groups = new Map();   // team -> { node, list, heading }
  const roles = new Map();    // uid -> role (from /api/clients)
  let rolesAt = 0, rolesWanted = false;

  function teamGroup(team) {
    let group = groups.get(team);
    if (group) return group;
    const heading = el("h3", { text: team });
    const list = el("ul", { cls: "contacts-list", attrs: { "aria-label": `Team ${team}` } });
    group = { node: el("section", { cls: "contacts-team" }, heading, list), list, heading };
    groups.set(team, group);
    // Teams in name order, "No team" last: insert before the first later one.
    const later = [...groups.keys()].filter((t) => t !== team).sort(teamOrder).find((t) => teamOrder(t, team) > 0);
    teams.insertBefore(group.node, later ? groups.get(later).node : null);
    return group;
  }

  function newRow(uid) {
    const name = el("strong", { cls: "contact-callsign" });
    const role = el("span", { cls: "contact-role" });
    const report = el("span", { cls: "contact-report" });
    const zoom = el("button", { text: "Zoom to", attrs: { type: "button" } });
    zoom.addEventListener("click", () => zoomTo(context, uid));
    const node = el("li", { cls: "contact", attrs: { "data-uid": uid } }, name, " ", role, " ", report, " ", zoom);
    return { node, name, role, report, zoom, team: null, key: "" };
  }

  function update(now) {
    const seen = new Set();
    for (const [uid, unit] of picture.units) {
      const p = unit.feature.properties;
      if (p.kind !== "client") continue;
      seen.add(uid);
      let row = rows.get(uid);
      if (!row) { row = newRow(uid); rows.set(uid, row); rolesWanted = true; }
      const stale = picture.isStale(unit, now);
      const callsign = p.callsign || uid, team = p.group || NO_TEAM, role = roles.get(uid) || "";
      const key = `${callsign}\u0000${role}\u0000${stale}`;
      if (row.key !== key) {
        row.key = key;
        row.name.textContent = callsign;
        row.role.textContent = role;
        row.zoom.setAttribute("aria-label", `Zoom to ${callsign}`);
        row.node.classList.toggle("stale", stale);
        row.search = `${callsign} ${team} ${role}`.toLowerCase();
      }
      row.report.textContent = ago(p.time_ms, now) + (stale ? " (stale)" : "");
      if (row.team !== team) {
        row.team = team;
        row.search = `${callsign} ${team} ${role}`.toLowerCase();
        teamGroup(team).list.append(row.node);
      }
    }
    for (const [uid, row] of rows) {
      if (!seen.has(uid)) { row.node.remove(); rows.delete(uid); }
    }
    filter();
  }

  function filter() {
    const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of rows.values()) {
      const match = words.every((w) => row.search.includes(w));
      row.node.hidden = !match;
      if (match) shown += 1;
    }
    for (const [team, group] of groups) {
      const visible = [...group.list.children].filter((li) => !li.hidden).length;
      group.node.hidden = visible === 0;
      group.heading.textContent = `${team} (${visible})`;
    }
    count.textContent = rows.size === 0 ? "No contacts." : `${shown} of ${rows.size} contacts`;
  }

  async function refreshRoles(now) {
    if (!rolesWanted || now - rolesAt < ROLES_EVERY_MS) return;
    rolesWanted = false;
    rolesAt = now;
    try {
      for (const client of await api("/api/clients")) if (client.role) roles.set(client.uid, client.role);
      update(Date.now());
    } catch { /* logged out or not yet connected: roles stay blank */ }
  }

  search.addEventListener("input", filter);
  const tick = () => {
    if (!section.open) return;
    const now = Date.now();
    update(now);
    refreshRoles(now);
  };
  section.addEventListener("toggle", tick);
  setInterval(tick, REFRESH_MS);
  tick();
}

function teamOrder(a, b) {
  if (a === b) return 0;
  if (a === NO_TEAM) return 1;
  if (b === NO_TEAM) return -1;
  return a.localeCompare(b);
}

registerPanel({ id: "contacts", title: "Contacts", order: 10, mount });
