// Emergencies: the red banner across the top of the page (#emergency-banner in index.html) while an alert the
// caller may read is active, with who, where and what, "Zoom to", an alarm (a WebAudio beep, no audio file)
// that repeats until this user acknowledges, and Acknowledge; Cancel for approvers and admins only (the server
// decides: POST /api/emergencies/{uid}/cancel). The panel lists every active alert with who acknowledged it.
// The live feed's "Emergencies" message carries the whole list each time it changes. Callsigns are text only.
import { registerPanel } from "./registry.js";
import { latLonText, mgrsText } from "../coords.js";
import { zoomTo } from "./contacts.js";

const BEEP_EVERY_MS = 1500;
const BEEP_MS = 250;
const WHO_AM_I_MS = 10_000;  // the login is asked again at most this often (a page may log in as someone else)
const KINDS = { "b-a-o-tbl": "911 Alert", "b-a-o-pan": "Ring The Bell", "b-a-o-opn": "In Contact",
                "b-a-g": "Geo-fence Breached", "b-a-o-c": "Custom" };

/** A beeper: ``start()`` repeats a short tone until ``stop()``; counts beeps on the banner (data-beeps). */
class Alarm {
  constructor(banner) { this.banner = banner; this.timer = null; this.audio = null; this.beeps = 0; }

  start() {
    if (this.timer) return;
    this.banner.dataset.sounding = "true";
    this.beep();
    this.timer = setInterval(() => this.beep(), BEEP_EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.banner.dataset.sounding = "false";
  }

  beep() {
    try {
      this.audio ||= new AudioContext();
      if (this.audio.state === "suspended") this.audio.resume();
      const osc = this.audio.createOscillator(), gain = this.audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.value = 0.15;
      osc.connect(gain).connect(this.audio.destination);
      osc.start();
      osc.stop(this.audio.currentTime + BEEP_MS / 1000);
    } catch { /* no audio device: the banner still shows */ }
    this.beeps += 1;
    this.banner.dataset.beeps = String(this.beeps);
  }
}

function mount(container, context) {
  const { api, el, onLive } = context;
  const $ = (id) => document.getElementById(id);
  const banner = $("emergency-banner");
  const alarm = new Alarm(banner);
  const list = el("ul", { cls: "emergency-list", attrs: { "aria-label": "Active emergencies" } });
  const none = el("p", { text: "No active emergency." });
  const problem = el("p", { cls: "panel-error", attrs: { role: "alert" } });
  container.append(none, list, problem);

  const state = { alerts: [], me: { principal: null, role: null }, meAt: 0, localAcks: new Set() };

  async function whoAmI() {
    if (Date.now() - state.meAt < WHO_AM_I_MS) return;
    state.meAt = Date.now();
    try {
      const me = await api("/api/web/session");
      state.me = { principal: me.principal ?? null, role: me.role ?? null };
    } catch {
      state.me = { principal: null, role: null };
    }
  }

  const mayCancel = () => state.me.role === "approver" || state.me.role === "admin";
  const ackedByMe = (a) => state.localAcks.has(a.uid) || a.acks.some((k) => k.by === state.me.principal);

  function describe(a) {
    const kind = a.kind || KINDS[a.cot_type] || a.cot_type;
    const where = a.position ? `${latLonText(a.position[1], a.position[0])} (${mgrsText(a.position[1], a.position[0])})`
                             : "position unknown";
    return `${kind}: ${a.callsign || a.sender_uid || a.uid} at ${where}`;
  }

  const ackLine = (a) => (a.acks.length ? `acknowledged by ${a.acks.map((k) => k.by).join(", ")}` : "not acknowledged");

  async function acknowledge(a) {
    problem.textContent = "";
    if (!state.me.principal) { state.localAcks.add(a.uid); show(); return; }  // anonymous: silence this page only
    try {
      await api(`/api/emergencies/${encodeURIComponent(a.uid)}/ack`, { method: "POST" });
      state.localAcks.add(a.uid);  // silent at once; the feed's next list names this user
      show();
    } catch (error) { problem.textContent = error.message; }
  }

  async function cancel(a) {
    problem.textContent = "";
    try {
      await api(`/api/emergencies/${encodeURIComponent(a.uid)}/cancel`, { method: "POST" });
    } catch (error) { problem.textContent = error.message; }
  }

  function actions(a, zoomLabel) {
    const zoom = el("button", { text: "Zoom to", attrs: { type: "button", "aria-label": zoomLabel } });
    zoom.addEventListener("click", () => zoomTo(context, a.sender_uid || a.uid, a.position));
    const ack = el("button", { text: ackedByMe(a) ? "Acknowledged" : "Acknowledge", attrs: { type: "button" } });
    ack.disabled = ackedByMe(a);
    ack.addEventListener("click", () => acknowledge(a));
    const stop = el("button", { text: "Cancel alert", attrs: { type: "button" } });
    stop.hidden = !mayCancel();
    stop.addEventListener("click", () => cancel(a));
    return [zoom, ack, stop];
  }

  let shown = "";
  function show() {
    const alerts = state.alerts;
    // Repeats of the same alerts change nothing: the banner keeps its focus and is not read out again.
    const signature = JSON.stringify([alerts.map((a) => [a.uid, a.callsign, a.kind, a.position, a.acks]),
                                      [...state.localAcks], state.me]);
    if (signature === shown) return;
    shown = signature;
    none.hidden = alerts.length > 0;
    list.replaceChildren(...alerts.map((a) => el("li", { cls: "emergency-item" },
      el("span", { cls: "emergency-what", text: describe(a) }), " ",
      el("span", { cls: "emergency-acks", text: ackLine(a) }), " ", ...actions(a, `Zoom to ${a.callsign || a.uid}`))));
    // The banner shows the newest alert this user has not acknowledged, else the newest one.
    const open = alerts.filter((a) => !ackedByMe(a));
    const top = open[open.length - 1] || alerts[alerts.length - 1];
    banner.hidden = !top;
    if (!top) { alarm.stop(); banner.replaceChildren(); return; }
    const more = alerts.length > 1 ? ` (+${alerts.length - 1} more)` : "";
    banner.replaceChildren(
      el("strong", { text: "EMERGENCY" }), " ",
      el("span", { cls: "emergency-what", attrs: { id: "emergency-text", role: "alert" }, text: describe(top) + more }), " ",
      el("span", { cls: "emergency-acks", attrs: { id: "emergency-acks" }, text: ackLine(top) }), " ",
      ...actions(top, `Zoom to ${top.callsign || top.uid}`));
    banner.dataset.uid = top.uid;
    if (open.length) alarm.start(); else alarm.stop();
  }

  onLive("Emergencies", async (message) => {
    const active = new Set(message.emergencies.map((a) => a.uid));
    for (const uid of state.localAcks) if (!active.has(uid)) state.localAcks.delete(uid);
    state.alerts = message.emergencies;
    // Shown after the login is known (who may cancel, who acknowledged): always the latest list.
    if (message.emergencies.length) await whoAmI();
    show();
  });
}

registerPanel({ id: "emergencies", title: "Emergencies", order: 5, mount });
