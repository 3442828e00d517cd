// Panels (contacts, chat, missions...) are modules that register here; main.js mounts each one into
// the side column with the shared picture. A panel renders client data with textContent only.

const panels = [];

/** Register a panel: { id, title, mount(container, picture) }. */
export function registerPanel(panel) { panels.push(panel); }

/** Mount every registered panel into ``root``, each in its own labelled section. */
export function mountPanels(root, picture) {
  for (const panel of panels) {
    const section = document.createElement("section");
    section.id = `panel-${panel.id}`;
    const heading = document.createElement("h2");
    heading.textContent = panel.title;
    section.append(heading);
    root.append(section);
    panel.mount(section, picture);
  }
}
