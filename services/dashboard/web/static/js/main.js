// main.js — the dashboard's boot and wiring: reads /config.json, finds the
// token and project (session.js), imports the edge's browser client and
// connects, subscribes the project room (board, activity) and the global
// room (system status), loads the board from the task API on the first
// subscribe and after every reset, and turns button clicks into API calls.

import { ApiError, createApi } from "./api.js";
import { createActivityList } from "./activity.js";
import { Board, normalizeTask } from "./board.js";
import { createConnectionIndicator } from "./connection.js";
import { byId, el, setAttr, setText, show } from "./dom.js";
import { initNewTaskForm } from "./newtask.js";
import { initNotice, showNotice } from "./notice.js";
import {
  PROJECT_ID, can, clearSession, decodeClaims, devTokenGetter, isExpired, loadDevUser, loadSession,
  projectFromClaims, roleSummary, saveProject, saveToken, takeFragment,
} from "./session.js";
import { createSystemPanel } from "./system.js";
import { createBoardView } from "./view.js";

const CLIENT_VERSION = "eventedge-dashboard/1";

/**
 * @typedef {object} Config /config.json
 * @property {string} edgeUrl ws(s):// URL or a path ending in /v1/ws
 * @property {string} clientUrl http(s):// URL or a path of the edge's client.js
 * @property {string} apiUrl the task API, http(s):// or a path, no trailing slash
 * @property {boolean} dev development mode (login page, /dev/token)
 * @property {string} loginUrl where "log in again" goes in production ("" for none)
 * @property {string} version
 */

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @returns {Promise<Config>} */
async function loadConfig() {
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const c = await res.json();
  if (!c || typeof c.edgeUrl !== "string" || typeof c.clientUrl !== "string" || typeof c.apiUrl !== "string") {
    throw new Error("edgeUrl, clientUrl and apiUrl are required");
  }
  return {
    edgeUrl: c.edgeUrl,
    clientUrl: c.clientUrl,
    apiUrl: c.apiUrl.replace(/\/+$/, ""),
    dev: c.dev === true,
    loginUrl: typeof c.loginUrl === "string" ? c.loginUrl : "",
    version: typeof c.version === "string" ? c.version : "",
  };
}

/**
 * absolute resolves a URL or path against the page; ws/wss for WebSockets.
 * @param {string} url
 * @param {boolean} [ws]
 */
function absolute(url, ws = false) {
  const u = new URL(url, window.location.href);
  if (ws) u.protocol = u.protocol.replace(/^http/, "ws");
  return u.href;
}

/** safeLoginUrl returns config.loginUrl when it is an http(s) URL or a path. */
function safeLoginUrl(config) {
  if (!config.loginUrl) return "";
  try {
    const u = new URL(config.loginUrl, window.location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : "";
  } catch {
    return "";
  }
}

/** gate replaces the dashboard with a message (no token, no config). */
function gate(title, text, link) {
  setText(byId("gate-title"), title);
  setText(byId("gate-text"), text);
  const a = /** @type {HTMLAnchorElement} */ (byId("gate-link"));
  if (link) {
    a.href = link.href;
    setText(a, link.text);
  }
  show(a, Boolean(link));
  show(byId("gate"), true);
  show(byId("dashboard"), false);
}

/** showUser fills #user from the token's claims. */
function showUser(claims) {
  const user = byId("user");
  const name = claims.name || claims.sub || "unknown user";
  const exp = claims.exp ? new Date(claims.exp * 1000).toLocaleString() : "";
  user.replaceChildren(el("span", { className: "user-name", text: name }));
  if (claims.name && claims.sub && claims.name !== claims.sub) user.append(el("span", { className: "user-sub", text: ` (${claims.sub})` }));
  user.append(" ", el("span", { className: "user-role", text: roleSummary(claims) }));
  const perms = claims.permissions.length ? claims.permissions.join(", ") : "none";
  user.title = `User ${claims.sub} · permissions: ${perms}${exp ? ` · token valid until ${exp}` : ""}`;
}

/**
 * importClient imports the edge's browser client, retrying with backoff
 * while the edge cannot be reached (the indicator counts down meanwhile).
 * @param {string} url
 * @param {{set: (s: any) => void}} conn
 */
async function importClient(url, conn) {
  let delay = 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      // A failed module fetch may stay cached: retry under another URL.
      const u = new URL(url);
      if (attempt > 0) u.searchParams.set("retry", String(attempt));
      return await import(u.href);
    } catch (err) {
      console.warn("dashboard: cannot load the edge client:", err);
      const offline = navigator.onLine === false;
      conn.set({ state: offline ? "offline" : "reconnecting", node: null, latencyMs: null, retryInMs: offline ? null : delay, error: "cannot load the edge client" });
      await sleep(delay);
      delay = Math.min(delay * 2, 30000);
    }
  }
}

/**
 * pickProject shows #project-picker and resolves with the chosen project.
 * @param {import("./session.js").Claims} claims
 * @returns {Promise<string>}
 */
function pickProject(claims) {
  const form = /** @type {HTMLFormElement} */ (byId("project-picker"));
  const input = /** @type {HTMLInputElement} */ (byId("project-input"));
  const choices = claims.projects.filter((p) => p !== "*" && PROJECT_ID.test(p));
  const list = byId("project-choices");
  list.replaceChildren(...choices.map((p) => el("option", { attrs: { value: p } })));
  if (!input.value && choices.length) input.value = choices[0];
  show(form, true);
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener("submit", function onSubmit(e) {
      e.preventDefault();
      const project = input.value.trim();
      if (!PROJECT_ID.test(project)) {
        input.setCustomValidity("1–64 letters, digits, _ or -.");
        input.reportValidity();
        return;
      }
      form.removeEventListener("submit", onSubmit);
      show(form, false);
      resolve(project);
    });
    input.addEventListener("input", () => input.setCustomValidity(""));
  });
}

async function boot() {
  initNotice();
  const conn = createConnectionIndicator(byId("conn"), byId("relogin"));

  /** @type {Config} */
  let config;
  try {
    config = await loadConfig();
  } catch (err) {
    conn.set({ state: "offline", node: null, latencyMs: null, retryInMs: null, error: null });
    gate("The dashboard cannot start", `Its configuration could not be loaded (${err?.message ?? err}). Reload the page to try again.`);
    return;
  }
  setText(byId("version"), config.version ? `eventedge dashboard ${config.version}` : "eventedge dashboard");

  const loginUrl = safeLoginUrl(config);
  byId("relogin").addEventListener("click", () => {
    if (config.dev) {
      clearSession();
      window.location.assign("/login");
    } else if (loginUrl) {
      clearSession();
      window.location.assign(loginUrl);
    } else {
      showNotice("Your session has ended. Open the dashboard again from your application.");
    }
  });

  // The token: the fragment first (then kept for reloads of this tab).
  const fragment = takeFragment();
  const stored = loadSession();
  const token = fragment.token ?? stored.token;
  const claims = token ? decodeClaims(token) : null;
  if (!token || !claims) {
    saveToken(null);
    if (config.dev) {
      window.location.replace("/login");
      return;
    }
    conn.set({ state: "unauthorized", node: null, latencyMs: null, retryInMs: null, error: null });
    gate("Open the dashboard from your application", token ? "The sign-in link is not valid." : "This page needs a sign-in link from your application.", loginUrl ? { href: loginUrl, text: "Log in" } : null);
    return;
  }
  if (fragment.token) saveToken(fragment.token);
  showUser(claims);

  let project = fragment.project ?? stored.project ?? projectFromClaims(claims);
  if (project) saveProject(project);

  // Development mode: fresh tokens for the user chosen at login.
  const auth = { token };
  const devUser = config.dev ? loadDevUser() : null;
  const getToken =
    devUser && devUser.sub === claims.sub
      ? devTokenGetter({ ...devUser, project: project ?? devUser.project }, (t) => (auth.token = t))
      : undefined;

  const mod = await importClient(absolute(config.clientUrl), conn);
  const client = mod.connect({
    url: absolute(config.edgeUrl, true),
    token: getToken && isExpired(claims) ? undefined : token,
    getToken,
    clientVersion: CLIENT_VERSION,
  });
  client.onState((s) => conn.set(s));
  window.addEventListener("pagehide", () => client.close(), { once: true });
  // Restored from the back/forward cache with a closed client: start afresh.
  window.addEventListener("pageshow", (e) => e.persisted && window.location.reload());

  // System status (global room).
  const system = createSystemPanel(byId("system"));
  if (can(claims, "system:read")) {
    system.waiting();
    client.subscribe("global", {
      events: ["system_status"],
      onEvent: (event) => system.update(event.data, event.timestamp),
      onError: (err) => system.unavailable(`The system status was refused: ${err.message}`),
    });
  } else {
    system.unavailable("The system status needs the system:read permission.");
  }

  if (!project) {
    project = await pickProject(claims);
    saveProject(project);
  }
  startBoard({ config, client, project, claims, auth, getToken });
}

/**
 * startBoard shows the project's board and keeps it current.
 * @param {{config: Config, client: any, project: string, claims: import("./session.js").Claims,
 *   auth: {token: string}, getToken?: () => Promise<string>}} ctx
 */
function startBoard({ config, client, project, claims, auth, getToken }) {
  const canWrite = can(claims, "tasks:write");
  const canLogs = can(claims, "logs:read");
  const boardEl = byId("board");
  const status = byId("board-status");
  setAttr(boardEl, "data-project", project);
  setText(byId("board-project"), project);
  setText(byId("project-label"), project);
  document.title = `${project} · eventedge dashboard`;
  show(byId("new-task"), canWrite);
  show(byId("dashboard"), true);

  const api = createApi({
    baseUrl: absolute(config.apiUrl).replace(/\/+$/, ""),
    project,
    token: () => auth.token,
    refreshToken: getToken,
  });
  const board = new Board();
  const activity = createActivityList(byId("activity"));
  const view = createBoardView(boardEl, { canWrite, canLogs, onAction, onSave });
  /** @type {Set<string>} */
  const fetching = new Set();

  const name = (id) => {
    const t = board.task(id);
    return t?.title ? `“${t.title}”` : `task ${id}`;
  };

  function commit(result) {
    view.apply(board, result);
    activity.add(result.activity);
    for (const id of result.fetch) fetchTask(id);
  }

  async function fetchTask(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      const raw = await api.getTask(id);
      if (raw) commit(board.applyFetched(raw));
    } catch (err) {
      console.warn(`dashboard: cannot read task ${id}:`, err);
    } finally {
      fetching.delete(id);
    }
  }

  function setStatus(text) {
    setText(status, text);
    show(status, text !== "");
  }

  async function load(reason) {
    const generation = board.beginLoad();
    boardEl.setAttribute("aria-busy", "true");
    setStatus(reason === "reset" ? "Reloading the tasks…" : "Loading the tasks…");
    let delay = 1000;
    for (;;) {
      try {
        const tasks = await api.listTasks();
        const result = board.finishLoad(generation, tasks);
        if (!result) return; // a newer load took over
        commit(result);
        boardEl.setAttribute("data-loaded", "true");
        boardEl.setAttribute("aria-busy", "false");
        setStatus("");
        if (reason === "reset") showNotice("Missed events while away — board reloaded", "reset");
        return;
      } catch (err) {
        if (!board.isCurrent(generation)) return;
        const message = err instanceof ApiError ? err.message : String(err?.message ?? err);
        const fatal = err instanceof ApiError && (err.status === 401 || err.status === 403);
        setStatus(`Could not load the tasks (${message}).${fatal ? "" : ` Trying again in ${Math.round(delay / 1000)} s.`}`);
        showNotice(`Could not load the tasks: ${message}`);
        if (fatal) return;
        await sleep(delay);
        delay = Math.min(delay * 2, 30000);
        if (!board.isCurrent(generation)) return;
      }
    }
  }

  client.onState((s) => {
    if (s.state === "unauthorized" && !board.loaded) setStatus("Signed out: log in again to see the tasks.");
  });

  let subscribed = false;
  client.subscribe(`project:${project}`, {
    onSubscribed: () => {
      if (subscribed) return; // a resume: the client replays what was missed
      subscribed = true;
      load("initial");
    },
    onReset: () => load("reset"),
    onEvent: (event, msg) => commit(board.receive(event, msg.seq)),
    onError: (err) => {
      setStatus(`This board is not available: ${err.message}`);
      showNotice(`Project ${project} refused: ${err.message}`);
    },
  });

  /** @type {import("./taskcard.js").CardOptions["onAction"]} */
  async function onAction(action, id, button) {
    const label = name(id);
    if (button.getAttribute("aria-busy") === "true") return; // already on its way
    if (action === "delete" && !window.confirm(`Delete ${label}? This cannot be undone.`)) return;
    button.setAttribute("aria-busy", "true");
    try {
      if (action === "run") await api.runTask(id);
      else if (action === "cancel") await api.cancelTask(id);
      else if (action === "delete") await api.deleteTask(id);
    } catch (err) {
      const verb = { run: "Running", cancel: "Cancelling", delete: "Deleting" }[action];
      showNotice(`${verb} ${label} failed: ${err?.message ?? err}`);
    } finally {
      button.removeAttribute("aria-busy");
    }
  }

  /** @type {import("./taskcard.js").CardOptions["onSave"]} */
  async function onSave(id, patch, revision) {
    const label = name(id);
    try {
      await api.updateTask(id, patch, revision);
      return { ok: true };
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        let current;
        try {
          const raw = await api.getTask(id);
          if (raw) {
            commit(board.applyFetched(raw));
            current = normalizeTask(raw) ?? undefined;
          }
        } catch {
          // the event will bring it
        }
        showNotice(`${label} changed meanwhile — reloaded. Check the values and save again.`);
        return { ok: false, current };
      }
      showNotice(`Saving ${label} failed: ${err?.message ?? err}`);
      return { ok: false };
    }
  }

  initNewTaskForm(async (fields) => {
    try {
      await api.createTask(fields);
      return true;
    } catch (err) {
      showNotice(`Creating the task failed: ${err?.message ?? err}`);
      return false;
    }
  });
}

boot().catch((err) => {
  console.error("dashboard: boot failed:", err);
  showNotice(`The dashboard failed to start: ${err?.message ?? err}`);
});
