// Package policy reads the edge node's room policy file: per room type or
// room-name pattern, the permissions a client needs on top of the built-in
// rules, how many clients one node admits to the room, how long a node keeps
// an empty room's NATS subscription and recent state, and a per-client rate
// limit for the room's low-priority events.
//
// The file is YAML or JSON: a file whose first non-space character is '{' is
// read as JSON, strictly, and anything else as YAML (so a YAML file cannot be
// one flow mapping). Field names are case-sensitive. Unknown fields, duplicate
// YAML keys and invalid values are refused with one line naming the rule (its
// index in rooms and its match) and the field. An empty file, or no file at
// all (None), gives every room [Default]. A full example:
//
//	# Rules are tried in file order; the first whose match fits the room
//	# applies, in full. A rule's unset fields take the built-in defaults
//	# (those of Default), not the values in the defaults section.
//	rooms:
//	  # The busiest projects: more clients, a tighter rate, a longer TTL.
//	  - match: "project:big-*"
//	    permissions: ["tasks:read", "tasks:big"]
//	    maxClients: 20000
//	    ttl: 2m
//	    lowEventsPerSecond: 5
//	    lowBurst: 10
//	  # Every other project room.
//	  - match: project
//	    permissions: ["tasks:read"]
//	    maxClients: 5000
//	    ttl: 30s
//	    lowEventsPerSecond: 20 # lowBurst defaults to 40
//	  # The global room: tear its subscription down as soon as it is empty.
//	  - match: global
//	    ttl: 0
//	# Optional: the rule for rooms no rule matches (here, user rooms). Its
//	# unset fields take the built-in defaults too.
//	defaults:
//	  maxClients: 100
//	  ttl: 10s
//
// The fields of a rule:
//
//   - match (required): a room type ("user", "project" or "global"), which
//     matches every room of that type, or a [path.Match] pattern on the room
//     name that starts with its type: "project:big-*", "user:bot-?", "global".
//   - permissions: permissions the client must all hold, in addition to the
//     built-in rules. Each is 1-64 characters of a-z 0-9 _ . : -.
//   - maxClients: clients one node admits to the room; a subscribe beyond it
//     is refused with room_full. 0 (the default) means unlimited.
//   - ttl: how long a node keeps an empty room's NATS subscription and recent
//     state before tearing them down, so that clients that flap do not churn
//     subscriptions. A Go duration ("30s", "2m") from 0 to 1h; 0 tears down at
//     once. The default is 10s.
//   - lowEventsPerSecond: the rate at which each client may receive the room's
//     low-priority events, at most 1000000. 0 (the default) sets no
//     room-specific limit.
//   - lowBurst: the burst for that rate; 0 (the default) means twice the
//     rate, rounded up, and at least 1. It may only be set with a rate.
//
// A shorter file in JSON:
//
//	{"rooms": [{"match": "project", "permissions": ["tasks:read"], "maxClients": 5000, "ttl": "30s"}],
//	 "defaults": {"ttl": "10s"}}
//
// A file is at most 1 MiB and holds at most 1000 rules.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/eventedge/eventedge/proto/room"
)

// Limits on a policy file.
const (
	maxFileSize           = 1 << 20
	maxRules              = 1000
	maxTTL                = time.Hour
	maxLowEventsPerSecond = 1_000_000
	defaultTTL            = 10 * time.Second
)

// Rule is what a policy sets for a room.
type Rule struct {
	// Match is the match of the rule that applied: a room type or a pattern
	// on the room name. It is "" for the defaults.
	Match string
	// Permissions are required, all of them, in addition to the built-in
	// rules. Nil when the rule adds none.
	Permissions []string
	// MaxClients is the number of clients one node admits to the room;
	// 0 means unlimited.
	MaxClients int
	// TTL is how long a node keeps an empty room's subscription and recent
	// state; 0 means tear down at once. At most 1h.
	TTL time.Duration
	// LowEventsPerSecond limits, per client, the room's low-priority events;
	// 0 means no room-specific limit.
	LowEventsPerSecond float64
	// LowBurst is the burst for LowEventsPerSecond: at least 1 when a rate
	// is set, else 0.
	LowBurst int
}

// Default is the rule for rooms no rule matches when there is no file, or the
// file has no defaults section: no extra permissions, unlimited clients, TTL
// 10s, no room-specific rate. It also supplies the value of every field a
// rule leaves unset. Policies do not read it: changing it changes nothing.
var Default = Rule{TTL: defaultTTL}

// builtin returns Default as declared, whatever callers did to it.
func builtin() Rule { return Rule{TTL: defaultTTL} }

// Policy maps rooms to rules. It is immutable after Parse or Load and safe for
// concurrent use. A nil *Policy behaves like None().
type Policy struct {
	rules    []compiled // in file order
	defaults Rule
}

// compiled is one rule of the file with its match resolved.
type compiled struct {
	// kind is set when the match is a room type; otherwise rule.Match is a
	// path.Match pattern on the room name.
	kind room.Kind
	rule Rule
}

// None returns the policy without rules: every room gets Default.
func None() *Policy { return &Policy{defaults: builtin()} }

// For returns the first rule, in file order, that matches r, with Match set to
// that rule's match; if none does, it returns the defaults, with Match "".
// The returned Rule is the caller's to modify.
func (p *Policy) For(r room.Room) Rule {
	if p == nil {
		return builtin()
	}
	name := r.String()
	for i := range p.rules {
		c := &p.rules[i]
		if c.kind != 0 {
			if c.kind == r.Kind {
				return c.rule.clone()
			}
			continue
		}
		// The pattern was checked by Parse, so Match cannot fail.
		if ok, _ := path.Match(c.rule.Match, name); ok {
			return c.rule.clone()
		}
	}
	return p.defaults.clone()
}

// clone copies r so that callers cannot change the policy's Permissions.
func (r Rule) clone() Rule {
	r.Permissions = slices.Clone(r.Permissions)
	return r
}

// Load reads and parses the policy file name. Its errors name the file.
func Load(name string) (*Policy, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err) // an *fs.PathError names the file
	}
	defer f.Close()
	// One byte over the limit is enough for parse to refuse the file.
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", name, err)
	}
	return p, nil
}

// Parse parses a policy file's contents, YAML or JSON. Its errors say which
// rule and which field is wrong.
func Parse(data []byte) (*Policy, error) {
	p, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

// The documents as decoded. Each list of names must match the json tags of
// its struct: decodeObject refuses any other name.
type (
	fileJSON struct {
		Rooms    []json.RawMessage `json:"rooms"`
		Defaults json.RawMessage   `json:"defaults"`
	}
	ruleJSON struct {
		Match              string          `json:"match"`
		Permissions        []string        `json:"permissions"`
		MaxClients         int             `json:"maxClients"`
		TTL                json.RawMessage `json:"ttl"` // checked by parseTTL
		LowEventsPerSecond float64         `json:"lowEventsPerSecond"`
		LowBurst           int             `json:"lowBurst"`
	}
)

var (
	fileFields     = []string{"rooms", "defaults"}
	ruleFields     = []string{"match", "permissions", "maxClients", "ttl", "lowEventsPerSecond", "lowBurst"}
	defaultsFields = ruleFields[1:]
)

func parse(data []byte) (*Policy, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than 1 MiB (%d bytes)", maxFileSize)
	}
	doc := data
	switch trimmed := bytes.TrimLeft(data, " \t\r\n"); {
	case len(trimmed) == 0:
		return None(), nil
	case trimmed[0] != '{':
		// Not JSON, which the YAML parser would accept too leniently
		// (trailing commas, trailing text). YAMLToJSONStrict refuses
		// duplicate keys, which encoding/json would resolve to the last.
		var err error
		if doc, err = yaml.YAMLToJSONStrict(data); err != nil {
			// Its errors may list one problem a line.
			return nil, fmt.Errorf("YAML: %s", strings.Join(strings.Fields(err.Error()), " "))
		}
	}
	var f fileJSON
	if err := decodeObject(doc, &f, fileFields); err != nil {
		return nil, err
	}
	if len(f.Rooms) > maxRules {
		return nil, fmt.Errorf("rooms: %d rules, at most %d allowed", len(f.Rooms), maxRules)
	}
	p := &Policy{rules: make([]compiled, 0, len(f.Rooms))}
	for i, raw := range f.Rooms {
		c, err := parseRule(raw)
		if err != nil {
			return nil, fmt.Errorf("rooms[%d]%s: %w", i, matchNote(raw), err)
		}
		p.rules = append(p.rules, c)
	}
	if isNull(f.Defaults) {
		p.defaults = builtin()
		return p, nil
	}
	var d ruleJSON
	if err := decodeObject(f.Defaults, &d, defaultsFields); err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	var err error
	if p.defaults, err = d.rule(); err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	return p, nil
}

func parseRule(raw json.RawMessage) (compiled, error) {
	var rj ruleJSON
	if err := decodeObject(raw, &rj, ruleFields); err != nil {
		return compiled{}, err
	}
	kind, err := checkMatch(rj.Match)
	if err != nil {
		return compiled{}, err
	}
	r, err := rj.rule()
	if err != nil {
		return compiled{}, err
	}
	r.Match = rj.Match
	return compiled{kind: kind, rule: r}, nil
}

// matchNote returns ` (match "…")` for a rule whose match is a string, for
// error messages; "" otherwise. decodeObject reports a match of another type.
func matchNote(raw json.RawMessage) string {
	var m struct {
		Match string `json:"match"`
	}
	_ = json.Unmarshal(raw, &m) // a match of another type leaves m.Match ""
	if m.Match == "" {
		return ""
	}
	return fmt.Sprintf(" (match %q)", m.Match)
}

// checkMatch checks a rule's match and returns its room kind if it names a
// room type, 0 if it is a pattern.
func checkMatch(m string) (room.Kind, error) {
	switch m {
	case "":
		return 0, errors.New("match is required")
	case "user":
		return room.KindUser, nil
	case "project":
		return room.KindProject, nil
	case "global":
		return room.KindGlobal, nil
	}
	if !strings.HasPrefix(m, "user:") && !strings.HasPrefix(m, "project:") && !strings.HasPrefix(m, "global") {
		return 0, errors.New(`match: want user, project, global or a pattern starting with "user:", "project:" or "global"`)
	}
	if _, err := path.Match(m, "x"); err != nil {
		return 0, fmt.Errorf("match: %w", err)
	}
	if strings.HasPrefix(m, "global") {
		// "global" is a room name, not a prefix: a pattern such as
		// "global:*" is a mistake, as it matches no room.
		if ok, _ := path.Match(m, "global"); !ok {
			return 0, errors.New("match: matches no room (the global room is named global)")
		}
	}
	return 0, nil
}

var permissionRE = regexp.MustCompile(`^[a-z0-9_.:-]{1,64}$`)

// rule checks the fields other than match and fills in the defaults.
func (rj *ruleJSON) rule() (Rule, error) {
	r := builtin()
	for i, p := range rj.Permissions {
		if !permissionRE.MatchString(p) {
			return Rule{}, fmt.Errorf("permissions[%d] %q: want 1-64 characters of a-z 0-9 _ . : -", i, p)
		}
	}
	if len(rj.Permissions) > 0 {
		r.Permissions = rj.Permissions
	}
	if rj.MaxClients < 0 {
		return Rule{}, fmt.Errorf("maxClients %d: must be 0 (unlimited) or more", rj.MaxClients)
	}
	r.MaxClients = rj.MaxClients
	if !isNull(rj.TTL) {
		ttl, err := parseTTL(rj.TTL)
		if err != nil {
			return Rule{}, err
		}
		r.TTL = ttl
	}
	// JSON has no NaN or infinity, but the negated comparison would refuse
	// them too.
	if !(rj.LowEventsPerSecond >= 0 && rj.LowEventsPerSecond <= maxLowEventsPerSecond) {
		return Rule{}, fmt.Errorf("lowEventsPerSecond %g: must be from 0 (no limit) to %d", rj.LowEventsPerSecond, maxLowEventsPerSecond)
	}
	r.LowEventsPerSecond = rj.LowEventsPerSecond
	switch {
	case rj.LowBurst < 0:
		return Rule{}, fmt.Errorf("lowBurst %d: must be 0 (twice the rate) or more", rj.LowBurst)
	case rj.LowBurst > 0 && r.LowEventsPerSecond == 0:
		return Rule{}, fmt.Errorf("lowBurst %d: set without lowEventsPerSecond", rj.LowBurst)
	case rj.LowBurst > 0:
		r.LowBurst = rj.LowBurst
	case r.LowEventsPerSecond > 0:
		// The rate is at most 1e6, so this cannot overflow.
		r.LowBurst = max(1, int(math.Ceil(2*r.LowEventsPerSecond)))
	}
	return r, nil
}

// parseTTL parses a ttl: a Go duration string, or the number 0, which YAML
// gives for "ttl: 0".
func parseTTL(raw json.RawMessage) (time.Duration, error) {
	var d time.Duration
	var s string
	var n float64
	switch {
	case json.Unmarshal(raw, &s) == nil:
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf(`ttl %q: want a Go duration such as "30s"`, s)
		}
	case json.Unmarshal(raw, &n) == nil:
		if n != 0 {
			return 0, fmt.Errorf(`ttl %s: want a Go duration with a unit, such as "30s"`, raw)
		}
	default:
		return 0, fmt.Errorf(`ttl: want a Go duration such as "30s", got %s`, jsonType(raw))
	}
	if d < 0 || d > maxTTL {
		return 0, fmt.Errorf("ttl %s: must be from 0 to 1h", d)
	}
	return d, nil
}

// decodeObject decodes the JSON object raw into v, refusing fields not in
// names. Names are compared exactly: encoding/json alone would also accept
// "maxclients" for maxClients, so a misspelt duplicate could override a field.
func decodeObject(raw json.RawMessage, v any, names []string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return describe(err, raw, "a mapping")
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(names, k) {
			return fmt.Errorf("unknown field %q (want %s)", k, strings.Join(names, ", "))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(err, raw, "")
	}
	return nil
}

// describe rewords an encoding/json error as one line naming the field.
func describe(err error, raw []byte, want string) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(raw[:min(int(se.Offset), len(raw))], []byte("\n"))
		return fmt.Errorf("JSON, line %d: %w", line, err)
	}
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	if want == "" {
		want = typeName(te)
	}
	if te.Field == "" {
		return fmt.Errorf("want %s, got %s", want, te.Value)
	}
	return fmt.Errorf("%s: want %s, got %s", te.Field, want, te.Value)
}

func typeName(te *json.UnmarshalTypeError) string {
	switch te.Type.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	}
	return te.Type.String()
}

// jsonType names the type of a JSON value for error messages.
func jsonType(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "a mapping"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	}
	return string(raw)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}
