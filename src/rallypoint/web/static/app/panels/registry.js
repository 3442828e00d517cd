// Panels (contacts, chat, missions...) are modules that register here; main.js mounts each one into
// the side column. A panel renders client data with textContent only (see el() in ../api.js).
//
// mount(container, context) receives:
//   picture   the live Picture (units by uid, with trails)
//   view      the PictureMap (view.map is the MapLibre map)
//   state     the page state (selected uid...)
//   api, el   from ../api.js
//   onLive(kind, handler)  call handler(message) for every live-feed message whose "type" is kind
//                          (messages other than Feature, FeatureCollection and Delete)
//   select(uid)            select a unit and show its details
// A panel is a <details> section: collapsed panels cost nothing on a 1024x768 screen.

const panels = [];

/** Register a panel: { id, title, order?, open?, mount(container, context) }. */
export function registerPanel(panel) { panels.push(panel); }

/** Mount every registered panel into ``root``, each in its own labelled, collapsible section. */
export function mountPanels(root, context) {
  const ordered = [...panels].sort((a, b) => (a.order ?? 100) - (b.order ?? 100));
  for (const panel of ordered) {
    const section = document.createElement("details");
    section.id = `panel-${panel.id}`;
    section.className = "panel";
    if (panel.open) section.open = true;
    const summary = document.createElement("summary");
    const heading = document.createElement("h2");
    heading.textContent = panel.title;
    summary.append(heading);
    const body = document.createElement("div");
    body.className = "panel-body";
    section.append(summary, body);
    root.append(section);
    try {
      panel.mount(body, context);
    } catch (error) {
      body.textContent = `this panel failed to start: ${error.message}`;
      console.error(error);
    }
  }
}
