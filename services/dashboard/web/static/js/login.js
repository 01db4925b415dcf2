// login.js — the development login page (/login, dev mode only): lists the
// demo users (GET /dev/users), mints a token for the one picked (POST
// /dev/token) and opens the dashboard with it in the URL fragment. The
// choice is kept in sessionStorage so the dashboard can mint fresh tokens.

import { byId, el, setText, show } from "./dom.js";
import { PROJECT_ID, mintDevToken, saveDevUser } from "./session.js";

const list = byId("login-users");
const error = byId("login-error");
const project = /** @type {HTMLInputElement} */ (byId("login-project"));

/** @param {string} text */
function fail(text) {
  setText(error, text);
  show(error, true);
}

/**
 * signIn mints a token for user and goes to the dashboard.
 * @param {string} user demo user id
 * @param {HTMLButtonElement} button
 */
async function signIn(user, button) {
  show(error, false);
  const p = project.value.trim();
  if (!PROJECT_ID.test(p)) {
    project.setCustomValidity("1–64 letters, digits, _ or -.");
    project.reportValidity();
    return;
  }
  if (list.getAttribute("aria-busy") === "true") return; // signing in already
  list.setAttribute("aria-busy", "true");
  button.setAttribute("aria-busy", "true");
  try {
    const minted = await mintDevToken(user, p);
    saveDevUser({ user, sub: minted.sub, project: p });
    window.location.assign(`/#token=${encodeURIComponent(minted.token)}&project=${encodeURIComponent(p)}`);
  } catch (err) {
    fail(String(err?.message ?? err));
    list.removeAttribute("aria-busy");
    button.removeAttribute("aria-busy");
  }
}

async function main() {
  project.addEventListener("input", () => project.setCustomValidity(""));
  let users;
  try {
    const res = await fetch("/dev/users", { cache: "no-store" });
    if (res.status === 404) throw new Error("The development login is off: open the dashboard from your application.");
    if (!res.ok) throw new Error(`The demo users could not be loaded (HTTP ${res.status}).`);
    users = await res.json();
    if (!Array.isArray(users)) throw new Error("The demo users could not be read.");
  } catch (err) {
    setText(byId("login-loading"), "");
    fail(String(err?.message ?? err));
    return;
  }
  show(byId("login-loading"), false);
  list.replaceChildren(
    ...users
      .filter((u) => u && typeof u.id === "string")
      .map((u) => {
        const perms = Array.isArray(u.permissions) ? u.permissions.join(", ") : "";
        const button = /** @type {HTMLButtonElement} */ (el("button", { className: "login-user", attrs: { type: "button", "data-user": u.id } },
          el("span", { className: "login-user-name", text: String(u.name ?? u.id) }),
          el("span", { className: "login-user-id", text: `${u.id} · ${String(u.sub ?? "")}` }),
          u.description ? el("span", { className: "login-user-desc", text: String(u.description) }) : null,
          perms ? el("span", { className: "login-user-perms", text: perms }) : null,
        ));
        button.addEventListener("click", () => signIn(u.id, button));
        return el("li", {}, button);
      }),
  );
}

main();
