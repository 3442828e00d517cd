// Chat: a conversation picker (All Chat Rooms, each team, each contact, rooms heard), the history of the chosen
// conversation, and a send box. Sending is POST /api/chat (the server sends GeoChat as rallypoint-api-<user>);
// receiving is the live feed's "Chat" messages, which the server routes by TAK's own rules. Unread counts show
// per conversation and, in total, beside the panel's title. Message text and callsigns are set with textContent.
import { registerPanel } from "./registry.js";

const ALL = "All Chat Rooms";
// ATAK's team colours: a chat to one of them reaches that team (TeamGroups).
const TEAMS = ["White", "Yellow", "Orange", "Magenta", "Red", "Maroon", "Purple", "Dark Blue", "Blue", "Cyan", "Teal",
               "Green", "Dark Green", "Brown"];
const KEEP = 200;          // messages kept per conversation
const SEEN = 2000;         // message uids remembered to drop echoes and repeats
const CONTACTS_MS = 2000;  // how often the contact list is compared with the picture

/** Which conversation a live "Chat" message belongs to: [key, label, target]. */
export function conversationOf(message) {
  if (message.direct) {
    const uid = message.sender_uid || message.chat_id;
    return [`uid:${uid}`, message.sender_callsign || uid, { to_uid: uid }];
  }
  if (message.team) return [`team:${message.team}`, `Team ${message.team}`, { room: message.team }];
  if (message.chatroom === ALL || !message.chatroom) return ["all", ALL, { room: ALL }];
  return [`room:${message.chatroom}`, message.chatroom, { room: message.chatroom }];
}

function mount(container, { api, el, onLive, picture }) {
  const section = container.parentElement;
  const heading = section.querySelector("summary h2");
  const badge = el("span", { cls: "chat-unread", attrs: { "aria-label": "unread messages" } });
  heading.after(badge);

  const picker = el("select", { attrs: { id: "chat-conversation" } });
  const rooms = el("optgroup", { attrs: { label: "Rooms" } });
  const teams = el("optgroup", { attrs: { label: "Teams" } });
  const people = el("optgroup", { attrs: { label: "Contacts" } });
  picker.append(rooms, teams, people);
  const history = el("ol", { cls: "chat-history", attrs: { id: "chat-history", "aria-label": "Messages",
                                                           "aria-live": "polite" } });
  const text = el("input", { attrs: { id: "chat-text", maxlength: "4096", autocomplete: "off", required: "" } });
  const problem = el("p", { cls: "panel-error", attrs: { role: "alert" } });
  const form = el("form", { cls: "chat-send", attrs: { "aria-label": "Send a message" } },
                  el("label", { text: "Message", attrs: { for: "chat-text" } }), text,
                  el("button", { text: "Send", attrs: { type: "submit" } }));
  container.append(el("label", { text: "Conversation", attrs: { for: "chat-conversation" } }), picker, history,
                   form, problem);

  const conversations = new Map();  // key -> { label, target, messages, unread, option }
  const seen = new Set();

  function conversation(key, label, target, group) {
    let c = conversations.get(key);
    if (c) return c;
    const option = el("option", { text: label, attrs: { value: key } });
    group.append(option);
    c = { label, target, messages: [], unread: 0, option };
    conversations.set(key, c);
    return c;
  }

  conversation("all", ALL, { room: ALL }, rooms);
  for (const team of TEAMS) conversation(`team:${team}`, `Team ${team}`, { room: team }, teams);
  picker.value = "all";

  function current() { return conversations.get(picker.value); }

  function line(m) {
    const at = el("time", { text: new Date(m.time_ms).toLocaleTimeString(),
                            attrs: { datetime: new Date(m.time_ms).toISOString() } });
    return el("li", { cls: m.mine ? "chat-line mine" : "chat-line" }, at, " ",
              el("strong", { cls: "chat-sender", text: m.sender }), " ", el("span", { cls: "chat-text", text: m.text }));
  }

  function showHistory() {
    const c = current();
    history.replaceChildren(...c.messages.map(line));
    history.scrollTop = history.scrollHeight;
    if (section.open) { c.unread = 0; label(c); }
    updateBadge();
  }

  function label(c) { c.option.textContent = c.unread ? `${c.label} (${c.unread})` : c.label; }

  function updateBadge() {
    let total = 0;
    for (const c of conversations.values()) total += c.unread;
    badge.textContent = total ? ` ${total} unread` : "";
  }

  function remember(uid) {
    if (seen.has(uid)) return false;
    seen.add(uid);
    if (seen.size > SEEN) seen.delete(seen.values().next().value);
    return true;
  }

  function add(c, m) {
    c.messages.push(m);
    if (c.messages.length > KEEP) c.messages.splice(0, c.messages.length - KEEP);
    if (c === current()) {
      history.append(line(m));
      if (history.children.length > KEEP) history.firstElementChild.remove();
      history.scrollTop = history.scrollHeight;
    }
    if (!m.mine && (c !== current() || !section.open || document.hidden)) {
      c.unread += 1;
      label(c);
      updateBadge();
    }
  }

  onLive("Chat", (message) => {
    if (!remember(message.uid)) return;
    const [key, name, target] = conversationOf(message);
    const group = key.startsWith("uid:") ? people : rooms;
    const c = conversation(key, name, target, group);
    // The user's own messages (sent from this page or another) count as read.
    add(c, { sender: message.sender_callsign || message.sender_uid || "?", text: message.text,
             time_ms: message.time_ms, mine: message.own });
  });

  // Contacts from the picture: a conversation for each TAK client (named by its current callsign).
  setInterval(() => {
    for (const [uid, unit] of picture.units) {
      const p = unit.feature.properties;
      if (p.kind !== "client") continue;
      const c = conversation(`uid:${uid}`, p.callsign || uid, { to_uid: uid }, people);
      if (p.callsign && c.label !== p.callsign) { c.label = p.callsign; label(c); }
    }
  }, CONTACTS_MS);

  picker.addEventListener("change", showHistory);
  section.addEventListener("toggle", () => { if (section.open) showHistory(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && section.open) showHistory(); });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const c = current();
    const body = text.value;
    if (!body.trim()) return;
    try {
      const sent = await api("/api/chat", { method: "POST", json: { text: body, ...c.target } });
      text.value = "";
      // The page's own room messages come back on the feed too: the uid makes the echo a repeat.
      if (remember(sent.uid)) add(c, { sender: "me", text: body, time_ms: Date.now(), mine: true });
    } catch (error) {
      problem.textContent = error.message;
    }
  });
}

registerPanel({ id: "chat", title: "Chat", order: 15, mount });
