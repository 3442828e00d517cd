// Data packages panel: the packages the caller may read (GET /api/packages), upload (multipart
// assetfile to POST /api/packages, the same store ATAK's /Marti/sync upload fills), download, send to a
// contact (POST /api/packages/{hash}/send: a b-f-t-r file transfer request, as ATAK sends one) and
// delete. Names, submitters and keywords come from clients: they are set as text only.
import { registerPanel } from "./registry.js";

registerPanel({ id: "packages", title: "Data packages", order: 70, mount });

/** "1.2 MB" from a byte count. */
export function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function mount(root, { api, el }) {
  const file = el("input", { attrs: { id: "packages-file", type: "file", name: "assetfile" } });
  const keywords = el("input", { attrs: { id: "packages-keywords", name: "keywords", maxlength: "256" } });
  const upload = el("button", { text: "Upload", attrs: { type: "submit", id: "packages-upload" } });
  const status = el("p", { attrs: { id: "packages-status", role: "status" } });
  const refresh = el("button", { text: "Refresh", attrs: { type: "button", id: "packages-refresh" } });
  const list = el("ul", { cls: "package-list", attrs: { id: "packages-list", "aria-label": "Data packages" } });
  // Callsigns of connected contacts, offered to send to.
  const contacts = el("datalist", { attrs: { id: "packages-contacts" } });
  const form = el("form", { attrs: { id: "packages-form", "aria-label": "Upload a data package" } },
                  el("label", { text: "File", attrs: { for: "packages-file" } }), file,
                  el("label", { text: "Keywords (comma-separated)", attrs: { for: "packages-keywords" } }), keywords,
                  upload);
  root.append(form, status, refresh, contacts, list);

  const say = (text, error = false) => { status.textContent = text; status.className = error ? "panel-error" : ""; };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) { say("choose a file first", true); return; }
    const body = new FormData();
    body.append("assetfile", file.files[0], file.files[0].name);
    const query = keywords.value.trim() ? `?keywords=${encodeURIComponent(keywords.value.trim())}` : "";
    upload.disabled = true;
    try {
      const stored = await api(`/api/packages${query}`, { method: "POST", form: body });
      say(`${stored.created ? "uploaded" : "already uploaded"}: ${stored.name}`);
      form.reset();
      await load();
    } catch (err) {
      say(err.message, true);
    } finally {
      upload.disabled = false;
    }
  });
  refresh.addEventListener("click", () => load());

  // Connected clients the caller can see (GET /api/clients): the ones a file transfer request can reach.
  async function offerContacts() {
    let names = [];
    try {
      names = (await api("/api/clients")).map((c) => c.callsign).filter(Boolean);
    } catch {
      return;  // the callsign can still be typed
    }
    contacts.replaceChildren(...[...new Set(names)].sort().map((name) => el("option", { attrs: { value: name } })));
  }

  function item(p) {
    const url = `/api/packages/${encodeURIComponent(p.hash)}`;
    const when = new Date(p.submitted).toLocaleString();
    const to = el("input", { attrs: { "aria-label": `Send ${p.name} to callsign`, list: "packages-contacts",
                                      placeholder: "callsign", maxlength: "256", name: "to_callsign" } });
    const send = el("button", { text: "Send", attrs: { type: "submit" } });
    const sendForm = el("form", { cls: "package-actions", attrs: { "aria-label": `Send ${p.name} to a contact` } },
                        to, send);
    sendForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!to.value.trim()) { say("name a contact's callsign", true); return; }
      try {
        const sent = await api(`${url}/send`, { method: "POST", json: { to_callsign: to.value.trim() } });
        say(`sent ${sent.name} to ${sent.to_callsign}`);
        to.value = "";
      } catch (err) {
        say(err.message, true);
      }
    });
    const remove = el("button", { text: "Delete", attrs: { type: "button", "aria-label": `Delete ${p.name}` } });
    remove.addEventListener("click", async () => {
      try {
        await api(url, { method: "DELETE" });
        say(`deleted ${p.name}`);
        await load();
      } catch (err) {
        say(err.message, true);
      }
    });
    const download = el("a", { text: "Download", attrs: { href: `${url}/content`, download: "",
                                                          "aria-label": `Download ${p.name}` } });
    return el("li", { cls: "package", attrs: { "data-hash": p.hash } },
              el("div", { cls: "package-name", text: p.name }),
              el("div", { cls: "package-meta", text: `${sizeText(p.size)} · ${p.submitter} · ${when}`
                                                       + (p.tool === "private" ? " · private" : "") }),
              el("div", { cls: "package-meta package-keywords",
                          text: p.keywords.length ? `keywords: ${p.keywords.join(", ")}` : "no keywords" }),
              ...(p.creator_uid ? [el("div", { cls: "package-meta package-creator", text: `from ${p.creator_uid}` })] : []),
              el("div", { cls: "package-hash", text: `sha256 ${p.hash}`, attrs: { title: p.hash } }),
              el("div", { cls: "package-actions" }, download, remove), sendForm);
  }

  async function load() {
    offerContacts();
    try {
      const packages = await api("/api/packages");
      list.replaceChildren(...(packages.length ? packages.map(item)
                                                : [el("li", { cls: "empty", text: "no data packages" })]));
    } catch (err) {
      list.replaceChildren(el("li", { cls: "panel-error", text: err.message }));
    }
  }
  // Loaded when the panel is opened (a closed panel costs no requests), and again on Refresh.
  root.closest("details")?.addEventListener("toggle", (event) => { if (event.target.open) load(); });
}
