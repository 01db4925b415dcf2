// eventedge browser client for WebSocket protocol v1: one connection that
// authenticates, subscribes, reconnects with backoff, resumes every room
// from the last delivered seq, drops duplicates and acknowledges positions.
// No dependencies, no build step. Guide: docs/client.md.

const PING_EVERY_MS = 15000; // also the liveness deadline (see #ping)
const ACK_EVERY_MS = 250; // at most one ack per room per this interval
const STABLE_AFTER_MS = 10000; // a connection up this long resets the backoff
const RESTART_JITTER_MS = 1000; // spread of reconnects after 1012 (node restart)
const RETRY_AFTER_JITTER_MS = 1000; // added to a 1013 retry-after
const SUBSCRIBE_RETRY_MS = 1000; // after an "internal" subscribe error: 1-2 s
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ROOM = /^(global|(user|project):[A-Za-z0-9_-]{1,64})$/;

/**
 * @typedef {object} ConnectOptions
 * @property {string} [url] WebSocket URL of an edge node. Default: /v1/ws on
 *   the origin this module was loaded from (ws: or wss:).
 * @property {string} [token] The JWT. Required unless getToken is given.
 * @property {() => Promise<string>} [getToken] Returns a fresh token. When
 *   given it is called before every connection attempt except a first one
 *   that has a token (so after a 4001 "token expired" too).
 * @property {string} [deviceId] 1-64 of A-Z a-z 0-9 _ -. With it the client
 *   acks its positions and the server remembers them per (user, device,
 *   room), so a later subscribe resumes where this device stopped.
 * @property {string} [clientVersion] At most 32 printable ASCII characters,
 *   logged by the server. Default "eventedge-js/1".
 * @property {number} [baseDelayMs] First reconnect delay bound. Default 250.
 * @property {number} [maxDelayMs] Largest reconnect delay. Default 30000.
 */

/**
 * @typedef {object} State
 * @property {"connecting"|"connected"|"reconnecting"|"offline"|"unauthorized"} state
 *   connecting: first attempt; connected: welcomed by a node; reconnecting:
 *   waiting retryInMs or trying again; offline: the browser is offline (the
 *   client retries when it is back); unauthorized: a 4001 or 4003 close and no
 *   getToken to get another token (the client has stopped).
 * @property {string|null} node The node of the current or last connection.
 * @property {number|null} latencyMs Round trip of the last protocol ping.
 * @property {number|null} retryInMs Delay before the next attempt, when waiting.
 * @property {string|null} error Why the last connection ended, e.g. "4008 slow consumer".
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {string[]} [events] Event types to receive; absent or empty: all.
 * @property {(event: object, msg: object) => void} [onEvent] Called once per
 *   event, in ascending seq: msg is the whole message ({op, room, seq, event}).
 * @property {(msg: {room: string, reason: string, seq: number}) => void} [onReset]
 *   The events after the client's position are gone (reason
 *   "history_truncated" or "stream_recreated"): reload the room's state from
 *   the REST API. Events after msg.seq follow.
 * @property {(err: {code: string, message: string}) => void} [onError] The
 *   server refused the subscription, or removed it (code "forbidden" after a
 *   token refresh). The subscription has ended.
 * @property {(seq: number|null) => void} [onSubscribed] Called each time the
 *   server has accepted the subscription (after the first subscribe and after
 *   every resume on a new connection), with the room's position. From the
 *   first call on no event of the room is missed: load the initial state from
 *   the REST API then, and apply the events that follow.
 */

/**
 * @typedef {object} Subscription
 * @property {string} room The room name.
 * @property {number|null} position The room's position: the seq after which
 *   delivery continues; null before the first subscribe reply.
 * @property {() => void} unsubscribe Ends this subscription (idempotent); the
 *   room is left when it was its last one.
 */

/**
 * connect opens a client and starts connecting. It never throws for network
 * errors: follow them with onState.
 * @param {ConnectOptions} options
 * @returns {Client}
 */
export function connect(options) {
  return new Client(options);
}

/** Client is one logical connection that survives reconnects. */
export class Client {
  #opts;
  #url;
  #stateFns = new Set();
  #state = { state: "connecting", node: null, latencyMs: null, retryInMs: null, error: null };
    #rooms = new Map();
  #closed = false;
  #attempt = 0; // failed attempts since the last stable connection
  #attempts = 0; // all attempts: the first may use options.token

  // Per connection; reset by #teardown.
  /** @type {WebSocket|null} */
  #ws = null;
  #opening = false; // waiting for getToken
  #welcomed = false;
  #nextId = 1;
  #pending = new Map(); // id -> callback(reply or pong)
  #pingSentAt = 0; // 0: no ping in flight
  #lastReceived = 0; // when the last frame arrived (performance.now())
  #timers = { retry: 0, ping: 0, stable: 0 };

  /** @param {ConnectOptions} options */
  constructor(options) {
    this.#opts = { clientVersion: "eventedge-js/1", baseDelayMs: 250, maxDelayMs: 30000, ...options };
    const { token, getToken, deviceId } = this.#opts;
    if (!token && !getToken) throw new TypeError("eventedge: token or getToken is required");
    if (deviceId !== undefined && !DEVICE_ID.test(deviceId)) throw new TypeError(`eventedge: deviceId must match ${DEVICE_ID}`);
    const url = new URL(this.#opts.url ?? "/v1/ws", import.meta.url);
    url.protocol = url.protocol.replace(/^http/, "ws"); // http: → ws:, https: → wss:
    this.#url = url.href;
    globalThis.addEventListener?.("online", this.#onNetwork);
    globalThis.addEventListener?.("offline", this.#onNetwork);
    this.#open();
  }

  /**
   * onState calls fn with the current state now and on every change.
   * @param {(s: State) => void} fn
   * @returns {() => void} stops the calls
   */
  onState(fn) {
    this.#stateFns.add(fn);
    safely(fn, this.#state);
    return () => this.#stateFns.delete(fn);
  }

  /**
   * subscribe joins a room now or as soon as the client is connected, and
   * keeps it joined across reconnects. Several subscriptions to one room
   * share its position; each sees only the event types it asked for.
   * @param {string} room "project:<id>", "user:<id>" or "global"
   * @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribe(room, { events, onEvent, onReset, onError, onSubscribed } = {}) {
    if (!ROOM.test(room)) throw new TypeError(`eventedge: invalid room ${JSON.stringify(room)}`);
    if (this.#closed) throw new Error("eventedge: client is closed");
    let r = this.#rooms.get(room);
    if (!r) this.#rooms.set(room, (r = newRoom(room)));
    const before = unionFilter(r);
    const listener = { filter: events?.length ? new Set(events) : null, onEvent, onReset, onError, onSubscribed };
    r.listeners.add(listener);
    if (this.#welcomed && (r.joinId === 0 || !sameFilter(before, unionFilter(r)))) this.#join(r);
    else if (r.joined && onSubscribed) queueMicrotask(() => r.listeners.has(listener) && safely(onSubscribed, r.position));
    return { room, get position() { return r.position; }, unsubscribe: () => this.#unsubscribe(r, listener) };
  }

  /** close sends the pending acks, closes the connection (1000) and stops for good. */
  close() {
    if (this.#closed) return;
    for (const r of this.#rooms.values()) this.#flushAck(r);
    this.#closed = true;
    globalThis.removeEventListener?.("online", this.#onNetwork);
    globalThis.removeEventListener?.("offline", this.#onNetwork);
    clearTimeout(this.#timers.retry);
    this.#ws?.close(1000, "client closed");
    this.#teardown();
    this.#stateFns.clear();
  }

  #unsubscribe(r, listener) {
    const before = unionFilter(r);
    if (!r.listeners.delete(listener) || this.#rooms.get(r.name) !== r) return;
    if (r.listeners.size > 0) {
      if (this.#welcomed && r.joinId !== 0 && !sameFilter(before, unionFilter(r))) this.#join(r);
      return;
    }
    this.#flushAck(r);
    clearTimeout(r.ackTimer);
    clearTimeout(r.retryTimer);
    this.#rooms.delete(r.name);
    if (this.#welcomed) this.#request({ op: "unsubscribe", room: r.name });
  }

  async #open() {
    this.#timers.retry = 0;
    if (this.#closed || this.#ws || this.#opening) return;
    if (globalThis.navigator?.onLine === false) return this.#set({ state: "offline", retryInMs: null });
    this.#set({ state: this.#attempts === 0 ? "connecting" : "reconnecting", retryInMs: null });
    let token = this.#opts.token;
    if (this.#opts.getToken && (this.#attempts > 0 || !token)) {
      this.#opening = true;
      try {
        token = await this.#opts.getToken();
      } catch (err) {
        return this.#retry(this.#backoff(), `getToken: ${err?.message ?? err}`);
      } finally {
        this.#opening = false;
      }
      if (this.#closed || this.#ws) return;
    }
    this.#attempts++;
    const ws = new WebSocket(this.#url);
    this.#ws = ws;
    const { deviceId, clientVersion } = this.#opts;
    ws.onopen = () => ws.send(JSON.stringify({ op: "auth", token, deviceId, clientVersion }));
    ws.onmessage = (e) => {
      // A frame may carry several messages, one a line.
      this.#lastReceived = performance.now();
      for (const line of String(e.data).split("\n")) if (this.#ws === ws && line.trim()) this.#handle(JSON.parse(line));
    };
    ws.onclose = (e) => {
      if (this.#ws === ws) this.#lost(e.code, e.reason);
    };
  }

  #handle(msg) {
    switch (msg.op) {
      case "welcome":
        return this.#welcome(msg);
      case "reply":
      case "pong": {
        const fn = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        return fn?.(msg);
      }
      case "event": {
        const r = this.#rooms.get(msg.room);
        // Before the subscribe reply, events belong to an older subscription
        // of the room: the join replays them from the position.
        if (!r || !r.joined || (r.position !== null && msg.seq <= r.position)) return;
        r.position = msg.seq;
        const type = msg.event?.type;
        for (const l of r.listeners) if (!l.filter || l.filter.has(type)) safely(l.onEvent, msg.event, msg);
        return this.#scheduleAck(r);
      }
      case "reset": {
        const r = this.#rooms.get(msg.room);
        if (!r || !r.joined) return;
        r.position = msg.seq;
        for (const l of r.listeners) safely(l.onReset, msg);
        return this.#scheduleAck(r);
      }
      case "unsubscribed": {
        const r = this.#rooms.get(msg.room);
        if (r) this.#end(r, { code: msg.reason, message: `removed from ${msg.room}: ${msg.reason}` });
        return;
      }
    }
  }

  #welcome(msg) {
    this.#welcomed = true;
    this.#set({ state: "connected", node: msg.node ?? null, retryInMs: null, error: null });
    this.#timers.stable = setTimeout(() => (this.#attempt = 0), STABLE_AFTER_MS);
    for (const r of this.#rooms.values()) {
      r.acked = 0; // an ack in flight when the last connection died may be lost
      this.#join(r);
    }
    this.#ping();
  }

  // #join (re)subscribes r on the current connection, from its position
  // when it has one. Events are ignored until the reply of the latest join.
  #join(r) {
    clearTimeout(r.retryTimer);
    r.joined = false;
    const since = r.position;
    const msg = { op: "subscribe", room: r.name };
    const types = unionFilter(r);
    if (types) msg.events = [...types];
    if (since !== null) msg.since = since;
    const id = this.#request(msg, (reply) => {
      if (this.#rooms.get(r.name) !== r || r.joinId !== id) return; // left or joined again since
      if (!reply.ok) {
        if (reply.error?.code !== "internal") return this.#end(r, reply.error);
        r.retryTimer = setTimeout(() => this.#welcomed && this.#join(r), SUBSCRIBE_RETRY_MS * (1 + Math.random()));
        return;
      }
      r.joined = true;
      if (typeof reply.seq === "number") r.position = r.position === null ? reply.seq : Math.max(r.position, reply.seq);
      if (since !== null) this.#scheduleAck(r);
      for (const l of r.listeners) safely(l.onSubscribed, r.position);
    });
    r.joinId = id;
  }

  // #end drops a room the server refused or removed.
  #end(r, err) {
    clearTimeout(r.ackTimer);
    clearTimeout(r.retryTimer);
    this.#rooms.delete(r.name);
    for (const l of r.listeners) {
      if (l.onError) safely(l.onError, err);
      else console.warn(`eventedge: subscription to ${r.name} ended:`, err);
    }
  }

  #scheduleAck(r) {
    if (this.#opts.deviceId && !r.ackTimer) r.ackTimer = setTimeout(() => ((r.ackTimer = 0), this.#flushAck(r)), ACK_EVERY_MS);
  }

  #flushAck(r) {
    if (!this.#opts.deviceId || !r.joined || r.position === null || r.position <= r.acked) return;
    r.acked = r.position;
    this.#send({ op: "ack", room: r.name, seq: r.position });
  }

  // #ping measures the round trip every PING_EVERY_MS. A ping unanswered
  // while nothing else arrived for as long means the connection is dead:
  // browsers may take minutes to notice a silent network.
  #ping() {
    this.#timers.ping = setTimeout(() => this.#ping(), PING_EVERY_MS);
    if (this.#pingSentAt === 0) {
      const sent = (this.#pingSentAt = performance.now());
      this.#request({ op: "ping" }, () => {
        this.#pingSentAt = 0;
        this.#set({ latencyMs: Math.round(performance.now() - sent) });
      });
    } else if (performance.now() - this.#lastReceived >= PING_EVERY_MS) {
      this.#ws.onclose = null; // no need to wait for its close handshake
      this.#ws.close(4000, "no pong");
      this.#lost(1006, "no pong within 15s");
    }
  }

  #request(msg, onReply) {
    const id = this.#nextId++;
    if (onReply) this.#pending.set(id, onReply);
    this.#send({ ...msg, id });
    return id;
  }

  #send(msg) {
    if (this.#welcomed && this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(msg));
  }

  #teardown() {
    this.#ws = null;
    this.#welcomed = false;
    this.#pending.clear();
    this.#pingSentAt = 0;
    for (const t of ["ping", "stable"]) clearTimeout(this.#timers[t]);
    for (const r of this.#rooms.values()) {
      r.joined = false;
      r.joinId = 0;
      clearTimeout(r.ackTimer);
      clearTimeout(r.retryTimer);
      r.ackTimer = 0;
    }
  }

  // #lost decides, from the close code, how and when to reconnect.
  #lost(code, reason) {
    this.#teardown();
    if (this.#closed) return;
    const error = `${code} ${reason || "connection lost"}`;
    if (globalThis.navigator?.onLine === false) return this.#set({ state: "offline", retryInMs: null, error });
    // 4001 (token refused or expired) and 4003 (access revoked): only a new
    // token can help.
    if ((code === 4001 || code === 4003) && !this.#opts.getToken) return this.#set({ state: "unauthorized", retryInMs: null, error });
    const retryAfter = code === 1013 && /^retry-after=(\d+)$/.exec(reason)?.[1];
    let delay;
    if (code === 1012) delay = Math.random() * RESTART_JITTER_MS; // service restart: another node takes us at once
    else if (retryAfter) delay = Number(retryAfter) * 1000 + Math.random() * RETRY_AFTER_JITTER_MS;
    else delay = this.#backoff(); // 1006 network, 4001/4003 (new token), 4008 slow consumer, 4029, 4400 …
    this.#retry(delay, error);
  }

  // #backoff is exponential with full jitter: random(0, min(max, base·2^attempt)).
  #backoff() {
    const { baseDelayMs, maxDelayMs } = this.#opts;
    const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.random() * cap;
  }

  #retry(delay, error) {
    if (this.#closed) return; // a getToken that failed after close
    clearTimeout(this.#timers.retry);
    this.#set({ state: "reconnecting", retryInMs: Math.round(delay), error });
    this.#timers.retry = setTimeout(() => this.#open(), delay);
  }

  // #onNetwork runs on the browser's online and offline events: retry at
  // once when back online; #open reports "offline" while it is not.
  #onNetwork = () => {
    if (this.#closed || this.#ws || this.#opening || this.#state.state === "unauthorized") return;
    clearTimeout(this.#timers.retry);
    this.#open();
  };

  #set(patch) {
    const next = { ...this.#state, ...patch };
    if (Object.keys(next).every((k) => next[k] === this.#state[k])) return;
    this.#state = Object.freeze(next);
    for (const fn of this.#stateFns) safely(fn, this.#state);
  }
}

// newRoom is the client's state of one room, shared by its subscriptions.
function newRoom(name) {
  return {
    name,
    listeners: new Set(), // {filter, onEvent, onReset, onError, onSubscribed}, one per subscription
    position: null, // seq of the last delivered event (or of a reset or subscribe reply)
    joined: false, // the reply to the latest join arrived on this connection
    joinId: 0, // id of the latest subscribe sent on this connection
    acked: 0, // the last position acked on this connection
    ackTimer: 0,
    retryTimer: 0,
  };
}

// unionFilter is the types of all r's subscriptions; null means all types.
function unionFilter(r) {
  const all = new Set();
  for (const l of r.listeners) {
    if (!l.filter) return null;
    for (const t of l.filter) all.add(t);
  }
  return all.size ? all : null;
}

function sameFilter(a, b) {
  return a === b || (a !== null && b !== null && a.size === b.size && [...a].every((t) => b.has(t)));
}

function safely(fn, ...args) {
  try {
    fn?.(...args);
  } catch (err) {
    console.error("eventedge: callback failed:", err);
  }
}
