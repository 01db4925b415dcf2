package admin

import (
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// The JSON of the responses. Field names are part of the API. Lists are
// never null: an empty one is [].

// ConnectionList is the response of GET /v1/admin/connections.
type ConnectionList struct {
	Connections []Connection `json:"connections"`
	// Next is the cursor of the following page; "" on the last page.
	Next string `json:"next"`
	// Total is the number of sessions matching the filters, all pages.
	Total int `json:"total"`
}

// Connection is one session.
type Connection struct {
	Session       string `json:"session"`
	User          string `json:"user"` // "" until authenticated
	Authenticated bool   `json:"authenticated"`
	// Permissions and Projects are the current token's.
	Permissions    []string  `json:"permissions"`
	Projects       []string  `json:"projects"`
	TokenExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
	Device         string    `json:"device"`
	RemoteAddr     string    `json:"remoteAddr"`
	UserAgent      string    `json:"userAgent"`
	ClientVersion  string    `json:"clientVersion"`
	// Mode is the wire format: json or protobuf.
	Mode           string    `json:"mode"`
	ConnectedSince time.Time `json:"connectedSince"`
	// LastActivity is the last client message read or frame written.
	LastActivity time.Time      `json:"lastActivity"`
	Rooms        []Subscription `json:"rooms"`
	Queue        Queue          `json:"queue"`
	// Held are the progress events held back by a rate limit or the
	// high-water mark, to be sent when the limits allow: at most the room
	// between the high-water mark and the queue's bounds.
	Held      Queue  `json:"held"`
	Drops     Drops  `json:"drops"`
	Coalesced uint64 `json:"coalesced"`
	Throttled uint64 `json:"throttled"`
	// Closing is the close reason's label once the session is closing.
	Closing string `json:"closing,omitempty"`
}

// Subscription is one room of a connection.
type Subscription struct {
	Room string `json:"room"`
	// Events is the event-type filter; [] means every type.
	Events []string `json:"events"`
	// LastSeq is the last delivered (or filtered) seq of the room.
	LastSeq    uint64 `json:"lastSeq"`
	CatchingUp bool   `json:"catchingUp"`
	// RoomRateDrops are low-priority events dropped by the room policy's
	// lowEventsPerSecond.
	RoomRateDrops uint64 `json:"roomRateDrops"`
}

// Queue is what waits in a connection's send queue (or is held back).
type Queue struct {
	Messages int `json:"messages"`
	Bytes    int `json:"bytes"`
}

// Drops are events not sent to a connection, by reason.
type Drops struct {
	Total        uint64 `json:"total"`
	Throttled    uint64 `json:"throttled"`
	HighWater    uint64 `json:"highWater"`
	QueueFull    uint64 `json:"queueFull"`
	SlowConsumer uint64 `json:"slowConsumer"`
}

func connectionOf(s session.Snapshot) Connection {
	c := Connection{
		Session:        s.ID,
		User:           s.User,
		Authenticated:  s.User != "",
		Permissions:    nonNil(s.Permissions),
		Projects:       nonNil(s.Projects),
		TokenExpiresAt: s.ExpiresAt.UTC(),
		Device:         s.Device,
		RemoteAddr:     s.RemoteAddr,
		UserAgent:      s.UserAgent,
		ClientVersion:  s.ClientVersion,
		Mode:           s.Mode,
		ConnectedSince: s.Since.UTC(),
		LastActivity:   s.LastActivity.UTC(),
		Rooms:          make([]Subscription, 0, len(s.Rooms)),
		Queue:          Queue{Messages: s.QueueMessages, Bytes: s.QueueBytes},
		Held:           Queue{Messages: s.HeldMessages, Bytes: s.HeldBytes},
		Drops: Drops{
			Total:        s.Drops.Throttled + s.Drops.HighWater + s.Drops.QueueFull + s.Drops.SlowConsumer,
			Throttled:    s.Drops.Throttled,
			HighWater:    s.Drops.HighWater,
			QueueFull:    s.Drops.QueueFull,
			SlowConsumer: s.Drops.SlowConsumer,
		},
		Coalesced: s.Coalesced,
		Throttled: s.Throttled,
		Closing:   s.Closing,
	}
	if s.ExpiresAt.IsZero() {
		c.TokenExpiresAt = time.Time{}
	}
	for _, r := range s.Rooms {
		c.Rooms = append(c.Rooms, Subscription{
			Room: r.Room, Events: nonNil(r.Events), LastSeq: r.Position, CatchingUp: r.CatchingUp, RoomRateDrops: r.RoomRateDrops,
		})
	}
	return c
}

// RoomList is the response of GET /v1/admin/rooms.
type RoomList struct {
	Rooms []Room `json:"rooms"`
	Total int    `json:"total"`
}

// Room is one room of the node.
type Room struct {
	Room string `json:"room"`
	// Subscribers is the number of local members; 0 for a room kept by
	// its policy's ttl after the last one left.
	Subscribers int `json:"subscribers"`
	// PermissionGroups counts members by their token's permission set.
	PermissionGroups []PermissionGroup `json:"permissionGroups"`
	// EventFilters counts members by event-type filter ([]: every type).
	EventFilters []EventFilter `json:"eventFilters"`
	NATS         NATS          `json:"nats"`
	// LastSeq is the last stream seq the room fanned out; PositionKnown is
	// false until it could be read from the stream (no gap detection yet).
	LastSeq       uint64 `json:"lastSeq"`
	PositionKnown bool   `json:"positionKnown"`
	// Repairs counts gaps repaired from the stream, RepairedEvents the
	// events read back, RepairFailures repairs that could not read the
	// stream (retried).
	Repairs        uint64 `json:"repairs"`
	RepairedEvents uint64 `json:"repairedEvents"`
	RepairFailures uint64 `json:"repairFailures"`
	Policy         Policy `json:"policy"`
}

// PermissionGroup is a number of subscribers with the same permissions.
type PermissionGroup struct {
	Permissions []string `json:"permissions"`
	Subscribers int      `json:"subscribers"`
}

// EventFilter is a number of subscribers with the same event filter.
type EventFilter struct {
	Events      []string `json:"events"`
	Subscribers int      `json:"subscribers"`
}

// NATS is the state of a room's NATS subscription.
type NATS struct {
	// State: pending, subscribed, error or unsubscribed.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// RetryPending: a re-check against the stream waits (after a failed
	// repair, a NATS slow consumer or an unknown position).
	RetryPending bool `json:"retryPending"`
}

// Policy is the room policy rule in force for a room.
type Policy struct {
	// Match is the rule's match; "" for the defaults.
	Match              string   `json:"match"`
	Permissions        []string `json:"permissions"`
	MaxClients         int      `json:"maxClients"`
	TTL                string   `json:"ttl"`
	LowEventsPerSecond float64  `json:"lowEventsPerSecond"`
	LowBurst           int      `json:"lowBurst"`
}

func roomOf(r hub.RoomSnapshot) Room {
	out := Room{
		Room:             r.Name,
		Subscribers:      r.Subscribers,
		PermissionGroups: make([]PermissionGroup, 0, len(r.Permissions)),
		EventFilters:     make([]EventFilter, 0, len(r.Filters)),
		NATS:             NATS{State: r.State, Error: r.Error, RetryPending: r.RetryPending},
		LastSeq:          r.LastSeq,
		PositionKnown:    r.Known,
		Repairs:          r.Repairs,
		RepairedEvents:   r.RepairedEvents,
		RepairFailures:   r.RepairFailures,
		Policy: Policy{
			Match:              r.Rule.Match,
			Permissions:        nonNil(r.Rule.Permissions),
			MaxClients:         r.Rule.MaxClients,
			TTL:                r.Rule.TTL.String(),
			LowEventsPerSecond: r.Rule.LowEventsPerSecond,
			LowBurst:           r.Rule.LowBurst,
		},
	}
	for _, g := range r.Permissions {
		out.PermissionGroups = append(out.PermissionGroups, PermissionGroup{Permissions: nonNil(g.Key), Subscribers: g.Subscribers})
	}
	for _, g := range r.Filters {
		out.EventFilters = append(out.EventFilters, EventFilter{Events: nonNil(g.Key), Subscribers: g.Subscribers})
	}
	return out
}

// CloseResult is the response of POST /v1/admin/connections/{session}/close.
type CloseResult struct {
	Session string `json:"session"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	// AlreadyClosing: the session was closing for another reason, which
	// stands (the first reason wins).
	AlreadyClosing bool `json:"alreadyClosing"`
}

// DrainResult is the response of POST /v1/admin/drain.
type DrainResult struct {
	Draining bool `json:"draining"`
	// AlreadyRequested: an earlier request started the drain.
	AlreadyRequested bool `json:"alreadyRequested"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
