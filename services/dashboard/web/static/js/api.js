// api.js — the task API client (services/taskapi/docs/openapi.json): bearer
// auth with the newest token, list pagination, If-Match revisions, and the
// API's error bodies turned into ApiError values with a readable message.

/** An answer of the task API that is not a success (or no answer at all). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the API could not be reached
   * @param {string} code the error body's code ("conflict", "forbidden", …) or "network"
   * @param {string} message the API's message
   * @param {string} [field] the field at fault, when the API names one
   */
  constructor(status, code, message, field) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const PAGE_SIZE = 200;
const MAX_PAGES = 1000; // 200,000 tasks: a cursor that never ends is a bug

/**
 * @typedef {object} ApiOptions
 * @property {string} baseUrl the API's URL (absolute, no trailing slash)
 * @property {string} project the project id
 * @property {() => string} token returns the current token
 * @property {(() => Promise<string>)} [refreshToken] development mode: a fresh
 *   token, used once when the API answers 401
 */

/**
 * createApi returns the task API client of one project.
 * @param {ApiOptions} opts
 */
export function createApi({ baseUrl, project, token, refreshToken }) {
  const tasksUrl = `${baseUrl}/v1/projects/${encodeURIComponent(project)}/tasks`;

  async function send(method, url, { body, ifMatch } = {}, retried = false) {
    const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (ifMatch !== undefined && ifMatch !== null) headers["If-Match"] = `"${ifMatch}"`;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network", "the task API cannot be reached");
    }
    if (res.status === 401 && refreshToken && !retried) {
      await refreshToken();
      return send(method, url, { body, ifMatch }, true);
    }
    let data = null;
    if (res.status !== 204) {
      const text = await res.text().catch(() => "");
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = null;
        }
      }
    }
    if (!res.ok) {
      const e = data?.error;
      const message = typeof e?.message === "string" && e.message ? e.message : `${res.status} ${res.statusText || "error"}`.trim();
      throw new ApiError(res.status, typeof e?.code === "string" ? e.code : "http", message, e?.field);
    }
    return data;
  }

  const taskUrl = (id) => `${tasksUrl}/${encodeURIComponent(id)}`;

  return {
    /**
     * listTasks fetches every task of the project, following nextCursor.
     * @returns {Promise<object[]>}
     */
    async listTasks() {
      const all = [];
      let cursor = "";
      const seen = new Set();
      for (let page = 0; page < MAX_PAGES; page++) {
        const url = `${tasksUrl}?limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
        const data = await send("GET", url);
        if (Array.isArray(data?.tasks)) all.push(...data.tasks);
        cursor = typeof data?.nextCursor === "string" ? data.nextCursor : "";
        if (!cursor || seen.has(cursor)) return all;
        seen.add(cursor);
      }
      return all;
    },

    /**
     * getTask fetches one task; null when it does not exist (404).
     * @param {string} id
     * @returns {Promise<object|null>}
     */
    async getTask(id) {
      try {
        return await send("GET", taskUrl(id));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }
    },

    /**
     * createTask creates a task.
     * @param {{title: string, description?: string, assignee?: string}} fields
     * @returns {Promise<object>} the created task
     */
    createTask(fields) {
      return send("POST", tasksUrl, { body: fields });
    },

    /**
     * updateTask changes a task if it still has revision (If-Match); a task
     * changed since answers 409 (ApiError code "conflict").
     * @param {string} id
     * @param {object} patch TaskPatch: only the fields to change; null clears
     * @param {number|null} revision the revision the change is based on
     * @returns {Promise<object>} the changed task
     */
    updateTask(id, patch, revision) {
      return send("PATCH", taskUrl(id), { body: patch, ifMatch: revision });
    },

    /**
     * deleteTask deletes a task.
     * @param {string} id
     * @returns {Promise<void>}
     */
    async deleteTask(id) {
      await send("DELETE", taskUrl(id));
    },

    /**
     * runTask starts the demo job on a task.
     * @param {string} id
     * @returns {Promise<{executionId: string}>}
     */
    runTask(id) {
      return send("POST", `${taskUrl(id)}/run`, { body: { job: "demo" } });
    },

    /**
     * cancelTask cancels a task's queued or running run.
     * @param {string} id
     * @returns {Promise<{executionId: string, status: string}>}
     */
    cancelTask(id) {
      return send("POST", `${taskUrl(id)}/cancel`);
    },
  };
}
