// Requests from the picture's panels to the native API. The session rides on the HttpOnly cookie;
// every request says it comes from the page (X-Requested-With), and the browser adds the Origin the
// server checks on writes. Errors carry the server's own wording so panels can show it as is.

export const PAGE_HEADERS = Object.freeze({ "X-Requested-With": "rallypoint-web" });

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `request refused (${status})`);
    this.status = status;
  }
}

/**
 * Call the native API. ``json`` is sent as a JSON body, ``form`` (a FormData) as multipart; the answer
 * is parsed as JSON when it says so, else returned as a Response for the caller to read.
 */
export async function api(path, { method = "GET", json, form, raw = false } = {}) {
  const headers = { ...PAGE_HEADERS };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  else if (form !== undefined) body = form;
  let answer;
  try {
    answer = await fetch(path, { method, headers, body, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "cannot reach the server");
  }
  if (!answer.ok) {
    const problem = await answer.json().catch(() => ({}));
    throw new ApiError(answer.status, problem.detail || problem.error || problem.reason);
  }
  if (raw) return answer;
  const kind = answer.headers.get("content-type") || "";
  return kind.includes("json") ? answer.json() : answer.text();
}

/** An element with text set through textContent only: client-sent strings never become markup. */
export function el(tag, { text, cls, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  if (attrs) for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}
