// format.js — how values are shown: task status names, icons and board
// columns, dates and numbers in the user's locale.

/** Board columns, left to right: key, heading, the statuses they hold. */
export const COLUMNS = [
  { key: "todo", title: "To do", statuses: ["TASK_STATUS_TODO", "TASK_STATUS_UNSPECIFIED"] },
  { key: "active", title: "Queued / Running", statuses: ["TASK_STATUS_QUEUED", "TASK_STATUS_RUNNING"] },
  { key: "done", title: "Done", statuses: ["TASK_STATUS_SUCCEEDED"] },
  { key: "failed", title: "Failed / Cancelled", statuses: ["TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"] },
];

const STATUS = {
  TASK_STATUS_UNSPECIFIED: { label: "No status", icon: "○", tone: "todo" },
  TASK_STATUS_TODO: { label: "To do", icon: "○", tone: "todo" },
  TASK_STATUS_QUEUED: { label: "Queued", icon: "◔", tone: "queued" },
  TASK_STATUS_RUNNING: { label: "Running", icon: "▶", tone: "running" },
  TASK_STATUS_SUCCEEDED: { label: "Succeeded", icon: "✓", tone: "succeeded" },
  TASK_STATUS_FAILED: { label: "Failed", icon: "✕", tone: "failed" },
  TASK_STATUS_CANCELLED: { label: "Cancelled", icon: "⊘", tone: "cancelled" },
};

/**
 * statusInfo describes a TaskStatus name for display.
 * @param {string} status e.g. "TASK_STATUS_RUNNING"
 * @returns {{label: string, icon: string, tone: string}}
 */
export function statusInfo(status) {
  return STATUS[status] ?? { label: String(status || "No status").replace(/^TASK_STATUS_/, "").toLowerCase(), icon: "○", tone: "todo" };
}

/**
 * columnOf returns the key of the board column a status belongs to.
 * @param {string} status
 * @returns {string}
 */
export function columnOf(status) {
  return COLUMNS.find((c) => c.statuses.includes(status))?.key ?? "todo";
}

/**
 * isActive reports whether a task with this status has a run in flight.
 * @param {string} status
 */
export function isActive(status) {
  return status === "TASK_STATUS_QUEUED" || status === "TASK_STATUS_RUNNING";
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 });
const shortTime = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

function parse(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/**
 * formatDateTime formats an RFC 3339 time as date and time in the user's
 * locale; "" for a missing or invalid value.
 * @param {string|undefined} value
 */
export function formatDateTime(value) {
  const d = parse(value);
  return d ? dateTime.format(d) : "";
}

/**
 * formatWhen formats an RFC 3339 time briefly: the time of day for today,
 * else date and time; "" for a missing or invalid value.
 * @param {string|undefined} value
 */
export function formatWhen(value) {
  const d = parse(value);
  if (!d) return "";
  return d.toDateString() === new Date().toDateString() ? shortTime.format(d) : dateTime.format(d);
}

/**
 * formatPercent formats an integer percentage (0–100) in the user's locale.
 * @param {number} pct
 */
export function formatPercent(pct) {
  return percent.format(pct / 100);
}

/**
 * formatClock formats an RFC 3339 time as a time of day (with seconds);
 * today's events need no date.
 * @param {string|undefined} value
 */
export function formatClock(value) {
  const d = parse(value);
  if (!d) return "";
  return d.toDateString() === new Date().toDateString() ? clock.format(d) : dateTime.format(d);
}

/**
 * formatNumber formats a number (or a uint64 decimal string) in the user's
 * locale with at most one decimal. A missing value is 0 (protojson omits
 * zero values); "–" for something that is not a number.
 * @param {number|string|undefined} value
 */
export function formatNumber(value) {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? number.format(n) : "–";
}
