// system.js — the system status panel (#system): health from the global
// room's system_status events (data-health), the key metrics, and the
// alerts (#alerts, one li per alert). Without system:read it says why there
// is nothing to show (data-health="unavailable").

import { byId, el, setAttr, setText, show } from "./dom.js";
import { formatClock, formatNumber } from "./format.js";

const HEALTH = {
  HEALTH_STATUS_HEALTHY: { key: "healthy", label: "Healthy", icon: "✓" },
  HEALTH_STATUS_DEGRADED: { key: "degraded", label: "Degraded", icon: "!" },
  HEALTH_STATUS_ERROR: { key: "error", label: "Error", icon: "✕" },
};
const UNKNOWN = { key: "unknown", label: "Unknown", icon: "?" };

const SEVERITY = {
  SEVERITY_INFO: { key: "info", label: "Info" },
  SEVERITY_WARNING: { key: "warning", label: "Warning" },
  SEVERITY_CRITICAL: { key: "critical", label: "Critical" },
};

/** The metrics shown, in order: [field, label, unit]. */
const METRICS = [
  ["edgeNodes", "Edge nodes", ""],
  ["connections", "Connections", ""],
  ["rooms", "Rooms", ""],
  ["eventsInPerSecond", "Events in", "/s"],
  ["eventsOutPerSecond", "Events out", "/s"],
  ["dropsPerSecond", "Drops", "/s"],
  ["p99DeliveryLatencyMs", "p99 delivery", " ms"],
  ["natsRttMs", "NATS RTT", " ms"],
  ["cpuPercent", "CPU", " %"],
  ["memoryPercent", "Memory", " %"],
  ["workers", "Workers", ""],
  ["jobsRunning", "Jobs running", ""],
];

/**
 * createSystemPanel drives #system (and #alerts inside it).
 * @param {HTMLElement} panel #system
 */
export function createSystemPanel(panel) {
  const badge = byId("system-health");
  const badgeIcon = el("span", { className: "health-icon", attrs: { "aria-hidden": "true" } });
  const badgeText = el("span", { className: "health-text" });
  badge.replaceChildren(badgeIcon, badgeText);
  const message = byId("system-message");
  const metrics = byId("system-metrics");
  const alerts = byId("alerts");
  const noAlerts = byId("alerts-none");
  const updated = byId("system-updated");
  /** @type {Map<string, HTMLElement>} */
  const values = new Map();
  for (const [field, label] of METRICS) {
    const dd = el("dd", { text: "–" });
    values.set(field, dd);
    metrics.append(el("div", { className: "metric" }, el("dt", { text: label }), dd));
  }

  function setHealth(h) {
    setAttr(panel, "data-health", h.key);
    setText(badgeIcon, h.icon);
    setText(badgeText, h.label);
  }

  setHealth(UNKNOWN);

  return {
    /** waiting says the panel waits for the first status. */
    waiting() {
      setHealth(UNKNOWN);
      setText(message, "Waiting for the first status report…");
      show(message, true);
    },

    /**
     * unavailable says why there is no status (no permission, refused).
     * @param {string} why a sentence
     */
    unavailable(why) {
      setAttr(panel, "data-health", "unavailable");
      setText(badgeIcon, "–");
      setText(badgeText, "Unavailable");
      setText(message, why);
      show(message, true);
      show(metrics, false);
      show(alerts, false);
      show(noAlerts, false);
      show(updated, false);
    },

    /**
     * update shows a system_status event's data.
     * @param {any} data {status, metrics, alerts}
     * @param {string} timestamp the event's time
     */
    update(data, timestamp) {
      setHealth(HEALTH[data?.status] ?? UNKNOWN);
      show(message, false);
      show(metrics, true);
      const m = data?.metrics ?? {};
      for (const [field, , unit] of METRICS) setText(/** @type {HTMLElement} */ (values.get(field)), `${formatNumber(m[field])}${unit}`);
      const list = Array.isArray(data?.alerts) ? data.alerts : [];
      alerts.replaceChildren(
        ...list.map((a) => {
          const sev = SEVERITY[a?.severity] ?? { key: "info", label: "Notice" };
          const since = formatClock(a?.since);
          return el("li", { className: "alert", attrs: { "data-severity": sev.key } },
            el("span", { className: "alert-severity", text: sev.label }),
            " ",
            el("span", { className: "alert-message", text: String(a?.message ?? "") }),
            since ? el("time", { className: "alert-since", text: ` since ${since}`, attrs: { datetime: a.since } }) : null,
          );
        }),
      );
      show(alerts, list.length > 0);
      show(noAlerts, list.length === 0);
      const when = formatClock(timestamp);
      setText(updated, when ? `Updated ${when}` : "");
      show(updated, when !== "");
    },
  };
}
