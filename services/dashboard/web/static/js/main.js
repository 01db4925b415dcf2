// main.js — the dashboard's boot and wiring: takes the token out of the
// address bar, reads /config.json, finds the token and project (session.js),
// imports the edge's browser client and connects, subscribes the project
// room (board, activity) and the global room (system status), loads the
// board from the task API on the first subscribe and after every reset, and
// turns button clicks into API calls. When the board cannot be kept current
// (the room's subscription ended, a load failed) it is marked stale
// (#board[data-stale]), its actions are turned off, and the subscription or
// the load is tried again with backoff.

import { ApiError, createApi } from "./api.js";
import { createActivityList } from "./activity.js";
import { Board, normalizeTask } from "./board.js";
import { createConnectionIndicator } from "./connection.js";
import { byId, el, setAttr, setText, show } from "./dom.js";
import { initNewTaskForm } from "./newtask.js";
import { clearNotice, initNotice, showNotice } from "./notice.js";
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

/** Attempts to load the board before it is shown as stale (and loaded again later, once per attempt). */
const LOAD_TRIES = 3;
/** First delay before another attempt to load the board; it doubles up to RETRY_MAX_MS. */
const LOAD_RETRY_MS = 1000;
/** First delay before subscribing the project room again; it doubles up to RETRY_MAX_MS. */
const RESUBSCRIBE_MS = 2000;
const RETRY_MAX_MS = 30000;
/** A subscription that lasted this long starts the next backoff from the beginning. */
const STABLE_MS = 30000;

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
  // The token leaves the address bar (and the history) before anything can
  // fail or wait: the fragment is read first and kept for reloads of this
  // tab.
  const fragment = takeFragment();
  if (fragment.token) saveToken(fragment.token);
  if (fragment.project) saveProject(fragment.project);

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

  // The token: the fragment's (taken above), else the one kept for this tab.
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
  const newTaskSubmit = /** @type {HTMLButtonElement} */ (byId("new-task-submit"));
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
  setAttr(boardEl, "data-duplicates", "0");

  const name = (id) => {
    const t = board.task(id);
    return t?.title ? `“${t.title}”` : `task ${id}`;
  };

  function commit(result) {
    view.apply(board, result);
    activity.add(result.activity);
    for (const id of result.fetch) fetchTask(id);
  }

  // fetchTask reads a task the board does not have. The board knows which
  // GETs are on their way, drops an answer that a reload overtook, and asks
  // again (Result.fetch) when the answer is older than an event seen
  // meanwhile.
  async function fetchTask(id) {
    const ticket = board.startFetch(id);
    if (!ticket) return; // on its way already
    let raw;
    try {
      raw = await api.getTask(id);
    } catch (err) {
      board.cancelFetch(ticket);
      console.warn(`dashboard: cannot read task ${id}:`, err);
      return;
    }
    commit(board.finishFetch(ticket, raw ?? null));
  }

  // ---- what #board and #board-status show ----

  /** @type {Map<"subscription"|"load", string>} why the board is not up to date (newest last) */
  const stale = new Map();
  let loadText = ""; // while a load runs: what it is doing
  let signedOut = false;

  function render() {
    const isStale = stale.size > 0;
    setAttr(boardEl, "data-stale", isStale ? "true" : null);
    setAttr(boardEl, "aria-busy", isStale || loadText ? "true" : "false");
    view.setDisabled(isStale);
    newTaskSubmit.disabled = isStale;
    let text = loadText || [...stale.values()].at(-1) || "";
    if (signedOut && !board.loaded) text = "Signed out: log in again to see the tasks.";
    setText(status, text);
    show(status, text !== "");
  }

  /**
   * markStale shows that the board is not up to date, and why (in
   * #board-status and #notice).
   * @param {"subscription"|"load"} key
   * @param {string} text
   */
  function markStale(key, text) {
    stale.delete(key);
    stale.set(key, text);
    render();
    showNotice(text);
  }

  /**
   * unmarkStale drops a reason of staleness and its notice (unless a newer
   * notice replaced it).
   * @param {"subscription"|"load"} key
   */
  function unmarkStale(key) {
    const text = stale.get(key);
    if (text === undefined) return;
    stale.delete(key);
    clearNotice(text);
  }

  client.onState((s) => {
    const out = s.state === "unauthorized";
    if (out === signedOut) return;
    signedOut = out;
    render();
  });

  // ---- loading ----

  let loadDelay = LOAD_RETRY_MS;
  let loadTimer = 0;
  /** @type {string|null} the reason of a load that failed: run again on the next onSubscribed or by loadTimer */
  let owed = null;

  /**
   * load reads the board from the task API. It tries LOAD_TRIES times (once
   * when the board is stale already), then gives up: the events buffered
   * meanwhile are applied, the board is marked stale, and the load runs
   * again after a delay (backoff) or on the next onSubscribed.
   * @param {"initial"|"reset"|"resubscribed"} reason
   */
  async function load(reason) {
    clearTimeout(loadTimer);
    loadTimer = 0;
    owed = null;
    const generation = board.beginLoad();
    const tries = stale.has("load") ? 1 : LOAD_TRIES; // stale already: the board stays live between attempts
    loadText = board.loaded ? "Reloading the tasks…" : "Loading the tasks…";
    render();
    let failure = ""; // the notice of a failed attempt, cleared when a later one succeeds
    for (let attempt = 1; ; attempt++) {
      try {
        const tasks = await api.listTasks();
        const result = board.finishLoad(generation, tasks);
        if (!result) return; // a newer load took over
        commit(result);
        loadDelay = LOAD_RETRY_MS;
        loadText = "";
        boardEl.setAttribute("data-loaded", "true");
        unmarkStale("load");
        if (subscriptionUp) unmarkStale("subscription");
        if (failure) clearNotice(failure);
        render();
        if (reason === "reset" || reason === "resubscribed") showNotice("Missed events while away — board reloaded", "reset");
        return;
      } catch (err) {
        if (!board.isCurrent(generation)) return;
        const message = err instanceof ApiError ? err.message : String(err?.message ?? err);
        const fatal = err instanceof ApiError && (err.status === 401 || err.status === 403);
        const wait = loadDelay;
        loadDelay = Math.min(loadDelay * 2, RETRY_MAX_MS);
        if (fatal || attempt >= tries) {
          const rest = board.abandonLoad(generation);
          if (rest) commit(rest);
          loadText = "";
          owed = reason;
          // Without the subscription, subscribing again loads the board.
          if (subscriptionUp) loadTimer = setTimeout(() => owed && load(owed), wait);
          const again = subscriptionUp ? `Trying again in ${Math.round(wait / 1000)} s.` : "Trying again once live updates are back.";
          markStale("load", `The tasks could not be loaded (${message}): the board is not up to date. ${again}`);
          return;
        }
        loadText = `Could not load the tasks (${message}). Trying again in ${Math.round(wait / 1000)} s.`;
        render();
        failure = `Could not load the tasks: ${message}`;
        showNotice(failure);
        await sleep(wait);
        if (!board.isCurrent(generation)) return;
      }
    }
  }

  // ---- the project room ----

  let subscriptionUp = false; // accepted, and not ended since
  /** @type {number|null} when the current subscription was accepted */
  let subscribedAt = null;
  let resubscribeDelay = RESUBSCRIBE_MS;

  // subscribe joins the project room. A new subscription starts live, so
  // its first onSubscribed loads the board; after a resume the client
  // replays what was missed, and only a load still owed runs. When the
  // subscription is refused or ended, the board is stale until the room is
  // subscribed again (after a delay, with backoff) and the board reloaded.
  function subscribe() {
    let accepted = false;
    const events = {
      onSubscribed: (seq) => {
        subscriptionUp = true;
        if (!accepted) {
          accepted = true;
          subscribedAt = Date.now();
          board.continueAfter(seq);
          activity.continueAfter(seq);
          load(board.loaded ? "resubscribed" : "initial");
          return;
        }
        if (owed) load(owed); // a resume: the client replays what was missed
      },
      onReset: (msg) => {
        board.continueAfter(msg?.seq);
        activity.continueAfter(msg?.seq);
        load("reset");
      },
      onEvent: (event, msg) => {
        commit(board.receive(event, msg.seq));
        setAttr(boardEl, "data-duplicates", String(board.duplicates));
      },
      onError: (err) => {
        subscriptionUp = false;
        clearTimeout(loadTimer); // the next subscription loads the board
        loadTimer = 0;
        if (subscribedAt !== null && Date.now() - subscribedAt >= STABLE_MS) resubscribeDelay = RESUBSCRIBE_MS;
        subscribedAt = null;
        const wait = resubscribeDelay;
        resubscribeDelay = Math.min(resubscribeDelay * 2, RETRY_MAX_MS);
        const why = err?.message || err?.code || "refused";
        markStale("subscription", `Live updates of project ${project} are not available (${why}): the board is not up to date. Trying again in ${Math.round(wait / 1000)} s.`);
        setTimeout(subscribe, wait);
      },
    };
    try {
      client.subscribe(`project:${project}`, events);
    } catch (err) {
      console.warn("dashboard: cannot subscribe the project room:", err); // the client is closed: the page is going away
    }
  }
  subscribe();

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
        /** @type {import("./board.js").Task|undefined} */
        let current;
        const generation = board.generation; // an answer that a reload overtook is not applied
        try {
          const raw = await api.getTask(id);
          if (raw) {
            commit(board.applyFetched(raw, generation));
            current = normalizeTask(raw) ?? undefined;
          }
        } catch {
          // the event will bring it; the board may have it already
        }
        const known = board.task(id);
        if (!current && known && known.revision !== revision) current = known;
        showNotice(current
          ? `${label} changed meanwhile. Your changes are kept in the form, next to the current values: check them and save again.`
          : `${label} changed meanwhile, and its current values could not be read. Your changes are kept in the form: try to save again.`);
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
