// session.js — who is using the dashboard: the token and project (from the
// URL fragment, else this tab's sessionStorage), the JWT's claims decoded for
// display only (the servers verify the token, the page never trusts it), and
// in development mode a getToken that mints fresh tokens from /dev/token.

const KEY_TOKEN = "eventedge.token";
const KEY_PROJECT = "eventedge.project";
const KEY_DEV_USER = "eventedge.devUser";

/** A project id as the task API and the edge accept it. */
export const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the session lives as long as the page
  }
}

function get(key) {
  try {
    return storage()?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function put(key, value) {
  try {
    if (value === null || value === undefined || value === "") storage()?.removeItem(key);
    else storage()?.setItem(key, value);
  } catch {
    // quota or disabled storage: a reload will ask again
  }
}

/**
 * takeFragment reads `#token=<jwt>&project=<id>` from the URL and removes the
 * fragment from the address bar (history.replaceState), so the token is not
 * left in the history or in a copied link.
 * @returns {{token: string|null, project: string|null}}
 */
export function takeFragment() {
  const hash = window.location.hash.replace(/^#/, "");
  if (!hash) return { token: null, project: null };
  const params = new URLSearchParams(hash);
  const token = params.get("token") || null;
  const project = params.get("project") || null;
  if (token || project) {
    const url = window.location.pathname + window.location.search;
    window.history.replaceState(window.history.state, "", url);
  }
  return { token, project: project && PROJECT_ID.test(project) ? project : null };
}

/**
 * loadSession returns the token and project kept for this tab.
 * @returns {{token: string|null, project: string|null}}
 */
export function loadSession() {
  const project = get(KEY_PROJECT);
  return { token: get(KEY_TOKEN), project: project && PROJECT_ID.test(project) ? project : null };
}

/**
 * saveToken keeps the token for reloads of this tab.
 * @param {string|null} token
 */
export function saveToken(token) {
  put(KEY_TOKEN, token);
}

/**
 * saveProject keeps the project for reloads of this tab.
 * @param {string|null} project
 */
export function saveProject(project) {
  put(KEY_PROJECT, project);
}

/**
 * clearSession forgets the token (and the development user) of this tab.
 */
export function clearSession() {
  put(KEY_TOKEN, null);
  put(KEY_DEV_USER, null);
}

/**
 * @typedef {object} Claims
 * @property {string} sub
 * @property {string} [name]
 * @property {string[]} permissions
 * @property {string[]} projects
 * @property {number|null} exp seconds since the epoch
 */

/**
 * decodeClaims decodes a JWT's payload WITHOUT verifying it: for display and
 * to choose what to show. Returns null for something that is not a JWT.
 * @param {string} token
 * @returns {Claims|null}
 */
export function decodeClaims(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const json = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    const p = JSON.parse(json);
    if (!p || typeof p !== "object") return null;
    const list = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
    return {
      sub: typeof p.sub === "string" ? p.sub : "",
      name: typeof p.name === "string" ? p.name : undefined,
      permissions: list(p.permissions),
      projects: list(p.projects),
      exp: typeof p.exp === "number" ? p.exp : null,
    };
  } catch {
    return null;
  }
}

/**
 * can reports whether the claims grant perm ("admin" grants everything). The
 * servers decide; this only chooses what the page offers.
 * @param {Claims|null} claims
 * @param {string} perm e.g. "tasks:write"
 */
export function can(claims, perm) {
  const p = claims?.permissions ?? [];
  return p.includes(perm) || p.includes("admin");
}

/**
 * projectFromClaims returns the only concrete project of the token's
 * `projects` claim, or null when there is none or more than one (or "*").
 * @param {Claims|null} claims
 * @returns {string|null}
 */
export function projectFromClaims(claims) {
  const list = (claims?.projects ?? []).filter((p) => p !== "*" && PROJECT_ID.test(p));
  return list.length === 1 ? list[0] : null;
}

/**
 * isExpired reports whether the claims' exp has passed (with a little slack).
 * @param {Claims|null} claims
 */
export function isExpired(claims) {
  return claims?.exp != null && claims.exp * 1000 <= Date.now() + 5000;
}

/**
 * roleSummary describes the permissions in a word: admin, editor (may change
 * tasks) or viewer.
 * @param {Claims|null} claims
 * @returns {string}
 */
export function roleSummary(claims) {
  if (can(claims, "admin")) return "admin";
  return can(claims, "tasks:write") ? "editor" : "viewer";
}

/**
 * @typedef {object} DevUser the development login's choice, kept per tab
 * @property {string} user demo user id ("viewer", "member", "admin")
 * @property {string} sub the token subject it maps to
 * @property {string} project
 */

/**
 * saveDevUser remembers the development login's choice for this tab, so the
 * dashboard can mint fresh tokens for the same user.
 * @param {DevUser} devUser
 */
export function saveDevUser(devUser) {
  put(KEY_DEV_USER, JSON.stringify(devUser));
}

/**
 * loadDevUser returns the development login's choice, or null.
 * @returns {DevUser|null}
 */
export function loadDevUser() {
  try {
    const v = JSON.parse(get(KEY_DEV_USER) ?? "null");
    return v && typeof v.user === "string" && typeof v.sub === "string" && typeof v.project === "string" ? v : null;
  } catch {
    return null;
  }
}

/**
 * mintDevToken asks the dashboard's development endpoint for a token.
 * @param {string} user demo user id
 * @param {string} project
 * @returns {Promise<{token: string, expiresAt: string, user: string, sub: string, project: string}>}
 */
export async function mintDevToken(user, project) {
  const res = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, project }),
    cache: "no-store",
  });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: reported below
  }
  if (!res.ok || typeof body?.token !== "string") {
    const msg = typeof body?.error === "string" ? body.error : body?.error?.message ?? `HTTP ${res.status}`;
    throw new Error(`cannot get a development token: ${msg}`);
  }
  return body;
}

/**
 * devTokenGetter returns a getToken for the client (development mode only):
 * each call mints a token for the user chosen at login, keeps it for reloads
 * and hands it to onToken (the task API client uses the newest token).
 * @param {DevUser} devUser
 * @param {(token: string) => void} onToken
 * @returns {() => Promise<string>}
 */
export function devTokenGetter(devUser, onToken) {
  return async () => {
    const { token } = await mintDevToken(devUser.user, devUser.project);
    saveToken(token);
    onToken(token);
    return token;
  };
}
