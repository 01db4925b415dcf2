package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/room"
)

var (
	bigProject = room.Project("big-1")
	project    = room.Project("p1")
	user       = room.User("u1")
)

// example is what testdata/example.yaml and testdata/example.json say.
var example = map[room.Room]Rule{
	bigProject:  {Match: "project:big-*", Permissions: []string{"tasks:read", "tasks:big"}, MaxClients: 20000, TTL: 2 * time.Minute, LowEventsPerSecond: 5, LowBurst: 10},
	project:     {Match: "project", Permissions: []string{"tasks:read"}, MaxClients: 5000, TTL: 30 * time.Second, LowEventsPerSecond: 20, LowBurst: 40},
	room.Global: {Match: "global"},
	user:        {MaxClients: 100, TTL: 10 * time.Second},
}

// none is what every room gets without a policy.
var none = map[room.Room]Rule{bigProject: Default, project: Default, room.Global: Default, user: Default}

func checkFor(t *testing.T, p *Policy, want map[room.Room]Rule) {
	t.Helper()
	for r, w := range want {
		if got := p.For(r); !reflect.DeepEqual(got, w) {
			t.Errorf("For(%s) = %+v, want %+v", r, got, w)
		}
	}
}

func TestParse(t *testing.T) {
	const sec = time.Second
	cases := []struct {
		name string
		data string
		want map[room.Room]Rule
	}{
		{name: "empty", data: "", want: none},
		{name: "blank", data: " \n\t\n", want: none},
		{name: "comments only", data: "# nothing yet\n", want: none},
		{name: "YAML null", data: "~", want: none},
		{name: "JSON empty object", data: "{}", want: none},
		{name: "no rooms", data: "rooms: []\n", want: none},
		{name: "null rooms and defaults", data: "rooms:\ndefaults:\n", want: none},
		{
			name: "YAML unset fields take the built-in defaults, not the file's",
			data: "rooms:\n  - match: user\ndefaults:\n  maxClients: 7\n  ttl: 1m\n  permissions: [x]\n",
			want: map[room.Room]Rule{
				user:    {Match: "user", TTL: 10 * sec},
				project: {Permissions: []string{"x"}, MaxClients: 7, TTL: time.Minute},
			},
		},
		{
			name: "JSON",
			data: "\n  {\"rooms\": [{\"match\": \"user:*\", \"maxClients\": 3, \"ttl\": \"1h\", \"lowEventsPerSecond\": 2.5}], \"defaults\": {\"ttl\": 0}}",
			want: map[room.Room]Rule{
				user:    {Match: "user:*", MaxClients: 3, TTL: time.Hour, LowEventsPerSecond: 2.5, LowBurst: 5},
				project: {},
			},
		},
		{
			name: "YAML flow style",
			data: `rooms: [{match: "project:p?", permissions: [tasks:read, admin]}]`,
			want: map[room.Room]Rule{project: {Match: "project:p?", Permissions: []string{"tasks:read", "admin"}, TTL: 10 * sec}},
		},
		{
			name: "ttl forms",
			data: "rooms:\n  - {match: user, ttl: 0}\n  - {match: project, ttl: 0s}\n  - {match: global, ttl: 1h0m0s}\n",
			want: map[room.Room]Rule{
				user:        {Match: "user"},
				project:     {Match: "project"},
				room.Global: {Match: "global", TTL: time.Hour},
			},
		},
		{
			name: "lowBurst defaults to twice the rate, rounded up, at least 1",
			data: "rooms:\n  - {match: user, lowEventsPerSecond: 0.3}\n  - {match: project, lowEventsPerSecond: 1.25}\n  - {match: global, lowEventsPerSecond: 1000000, lowBurst: 3}\n",
			want: map[room.Room]Rule{
				user:        {Match: "user", TTL: 10 * sec, LowEventsPerSecond: 0.3, LowBurst: 1},
				project:     {Match: "project", TTL: 10 * sec, LowEventsPerSecond: 1.25, LowBurst: 3},
				room.Global: {Match: "global", TTL: 10 * sec, LowEventsPerSecond: 1e6, LowBurst: 3},
			},
		},
		{
			name: "empty permissions",
			data: "rooms:\n  - {match: user, permissions: []}\n",
			want: map[room.Room]Rule{user: {Match: "user", TTL: 10 * sec}},
		},
		{
			name: "global as a pattern",
			data: "rooms:\n  - {match: 'global*', maxClients: 1}\n",
			want: map[room.Room]Rule{room.Global: {Match: "global*", MaxClients: 1, TTL: 10 * sec}, user: Default},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			checkFor(t, p, tc.want)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	cases := []struct {
		name string
		data string
		want []string // each must be in the error
	}{
		{name: "YAML syntax", data: "rooms:\n  - match: user\n bad", want: []string{"YAML", "line 2"}},
		{name: "YAML flow mapping is read as JSON", data: `{rooms: []}`, want: []string{"JSON, line 1"}},
		{name: "JSON trailing comma", data: `{"rooms": [],}`, want: []string{"JSON, line 1"}},
		{name: "JSON syntax", data: "{\"rooms\": [\n{\"match\": \"user\",}]}", want: []string{"JSON, line 2"}},
		{name: "JSON trailing data", data: `{"rooms": []} {}`, want: []string{"JSON, line 1"}},
		{name: "duplicate YAML key", data: "rooms:\n  - match: user\n    ttl: 1s\n    ttl: 2s\n", want: []string{"YAML", "line 4", `"ttl" already set`}},
		{name: "top level not a mapping", data: "- match: user\n", want: []string{"want a mapping, got array"}},
		{name: "unknown top-level field", data: "room:\n  - match: user\n", want: []string{`unknown field "room"`, "rooms, defaults"}},
		{name: "rooms not a list", data: "rooms: {match: user}\n", want: []string{"rooms: want a list"}},
		{name: "rule not a mapping", data: "rooms: [user]\n", want: []string{"rooms[0]: want a mapping, got string"}},
		{name: "unknown rule field", data: "rooms:\n  - {match: user}\n  - {match: project, maxClient: 1}\n", want: []string{`rooms[1] (match "project")`, `unknown field "maxClient"`}},
		{name: "field in other case", data: "rooms:\n  - {match: user, maxclients: 1}\n", want: []string{`rooms[0] (match "user")`, `unknown field "maxclients"`}},
		{name: "unknown defaults field", data: "defaults: {tll: 1s}\n", want: []string{"defaults", `unknown field "tll"`}},
		{name: "match in defaults", data: "defaults: {match: user}\n", want: []string{"defaults", `unknown field "match"`}},
		{name: "defaults not a mapping", data: "defaults: 5\n", want: []string{"defaults: want a mapping, got number"}},
		{name: "match missing", data: "rooms:\n  - {ttl: 1s}\n", want: []string{"rooms[0]: match is required"}},
		{name: "match null", data: "rooms:\n  - ~\n", want: []string{"rooms[0]: match is required"}},
		{name: "match not a string", data: "rooms:\n  - {match: 5}\n", want: []string{"rooms[0]: match: want a string, got number"}},
		{name: "match unknown kind", data: "rooms:\n  - {match: team}\n", want: []string{`rooms[0] (match "team")`, "match: want user, project, global"}},
		{name: "match pattern without kind", data: "rooms:\n  - {match: '*'}\n", want: []string{`rooms[0] (match "*"): match: want user`}},
		{name: "match pattern kind without colon", data: "rooms:\n  - {match: 'user*'}\n", want: []string{`rooms[0] (match "user*"): match: want user`}},
		{name: "match bad pattern", data: "rooms:\n  - {match: 'project:[a-'}\n", want: []string{`rooms[0] (match "project:[a-")`, "syntax error in pattern"}},
		{name: "match global pattern matching nothing", data: "rooms:\n  - {match: 'global:*'}\n", want: []string{`rooms[0] (match "global:*"): match: matches no room`}},
		{name: "permission upper case", data: "rooms:\n  - {match: user, permissions: [tasks:read, Tasks:Write]}\n", want: []string{`rooms[0] (match "user")`, `permissions[1] "Tasks:Write"`}},
		{name: "permission empty", data: "rooms:\n  - {match: user, permissions: ['']}\n", want: []string{`permissions[0] ""`}},
		{name: "permission too long", data: "rooms:\n  - {match: user, permissions: [" + strings.Repeat("a", 65) + "]}\n", want: []string{"permissions[0]"}},
		{name: "permission not a string", data: "rooms:\n  - {match: user, permissions: [[a]]}\n", want: []string{"permissions", "want a string, got array"}}, // Go 1.27 names the element: permissions.0
		{name: "permissions not a list", data: "rooms:\n  - {match: user, permissions: tasks:read}\n", want: []string{"permissions: want a list, got string"}},
		{name: "maxClients negative", data: "rooms:\n  - {match: user, maxClients: -1}\n", want: []string{`rooms[0] (match "user")`, "maxClients -1"}},
		{name: "maxClients fraction", data: "rooms:\n  - {match: user, maxClients: 1.5}\n", want: []string{"maxClients: want an integer, got number 1.5"}},
		{name: "maxClients string", data: `{"rooms": [{"match": "user", "maxClients": "10"}]}`, want: []string{"maxClients: want an integer, got string"}},
		{name: "ttl negative", data: "rooms:\n  - {match: user, ttl: -1s}\n", want: []string{`rooms[0] (match "user")`, "ttl -1s: must be from 0 to 1h"}},
		{name: "ttl over an hour", data: "rooms:\n  - {match: user, ttl: 61m}\n", want: []string{"ttl 1h1m0s: must be from 0 to 1h"}},
		{name: "ttl without unit", data: "rooms:\n  - {match: user, ttl: 30}\n", want: []string{"ttl 30: want a Go duration with a unit"}},
		{name: "ttl quoted without unit", data: "rooms:\n  - {match: user, ttl: '30'}\n", want: []string{`ttl "30": want a Go duration`}},
		{name: "ttl garbage", data: "rooms:\n  - {match: user, ttl: soon}\n", want: []string{`ttl "soon"`}},
		{name: "ttl a list", data: "rooms:\n  - {match: user, ttl: [1s]}\n", want: []string{"ttl: want a Go duration", "got a list"}},
		{name: "defaults ttl", data: "defaults: {ttl: 2h}\n", want: []string{"defaults: ttl 2h0m0s"}},
		{name: "rate negative", data: "rooms:\n  - {match: user, lowEventsPerSecond: -0.5}\n", want: []string{`rooms[0] (match "user")`, "lowEventsPerSecond -0.5"}},
		{name: "rate too high", data: "rooms:\n  - {match: user, lowEventsPerSecond: 1e7}\n", want: []string{"lowEventsPerSecond 1e+07: must be from 0 (no limit) to 1000000"}},
		{name: "rate NaN", data: "rooms:\n  - {match: user, lowEventsPerSecond: .nan}\n", want: []string{"YAML", "NaN"}},
		{name: "rate string", data: "rooms:\n  - {match: user, lowEventsPerSecond: fast}\n", want: []string{"lowEventsPerSecond: want a number, got string"}},
		{name: "burst negative", data: "rooms:\n  - {match: user, lowEventsPerSecond: 1, lowBurst: -1}\n", want: []string{`rooms[0] (match "user")`, "lowBurst -1"}},
		{name: "burst without rate", data: "rooms:\n  - {match: user, lowBurst: 4}\n", want: []string{"lowBurst 4: set without lowEventsPerSecond"}},
		{name: "too many rules", data: "rooms:\n" + strings.Repeat("  - {match: user}\n", maxRules+1), want: []string{"rooms: 1001 rules, at most 1000"}},
		{name: "too large", data: "#" + strings.Repeat(" ", maxFileSize), want: []string{"larger than 1 MiB"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.data))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has more than one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestParseRuleLimit(t *testing.T) {
	p, err := Parse([]byte("rooms:\n" + strings.Repeat("  - {match: user}\n", maxRules)))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.rules); got != maxRules {
		t.Fatalf("got %d rules, want %d", got, maxRules)
	}
}

func TestForPrecedence(t *testing.T) {
	const sec = time.Second
	cases := []struct {
		name string
		data string
		want map[room.Room]Rule
	}{
		{
			name: "first match wins: pattern before kind",
			data: "rooms:\n  - {match: 'project:big-*', maxClients: 1}\n  - {match: project, maxClients: 2}\n",
			want: map[room.Room]Rule{
				bigProject: {Match: "project:big-*", MaxClients: 1, TTL: 10 * sec},
				project:    {Match: "project", MaxClients: 2, TTL: 10 * sec},
				user:       Default,
			},
		},
		{
			name: "first match wins: kind shadows a later pattern",
			data: "rooms:\n  - {match: project, maxClients: 2}\n  - {match: 'project:big-*', maxClients: 1}\n",
			want: map[room.Room]Rule{
				bigProject: {Match: "project", MaxClients: 2, TTL: 10 * sec},
				project:    {Match: "project", MaxClients: 2, TTL: 10 * sec},
			},
		},
		{
			name: "first of two patterns",
			data: "rooms:\n  - {match: 'user:u?', maxClients: 1}\n  - {match: 'user:*', maxClients: 2}\n",
			want: map[room.Room]Rule{
				user:                 {Match: "user:u?", MaxClients: 1, TTL: 10 * sec},
				room.User("u10"):     {Match: "user:*", MaxClients: 2, TTL: 10 * sec},
				room.Project("u1"):   Default,
				room.Project("p-u1"): Default,
			},
		},
		{
			name: "exact room name",
			data: "rooms:\n  - {match: 'project:p1', maxClients: 1}\n",
			want: map[room.Room]Rule{
				project:            {Match: "project:p1", MaxClients: 1, TTL: 10 * sec},
				room.Project("p2"): Default,
				room.User("p1"):    Default,
			},
		},
		{
			name: "kinds do not cross",
			data: "rooms:\n  - {match: user, maxClients: 1}\n  - {match: global, maxClients: 2}\ndefaults: {maxClients: 3}\n",
			want: map[room.Room]Rule{
				user:        {Match: "user", MaxClients: 1, TTL: 10 * sec},
				room.Global: {Match: "global", MaxClients: 2, TTL: 10 * sec},
				project:     {MaxClients: 3, TTL: 10 * sec},
				room.Room{}: {MaxClients: 3, TTL: 10 * sec},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			checkFor(t, p, tc.want)
		})
	}
}

func TestNone(t *testing.T) {
	checkFor(t, None(), none)
	var nilPolicy *Policy
	checkFor(t, nilPolicy, none)
	if want := (Rule{TTL: 10 * time.Second}); !reflect.DeepEqual(Default, want) {
		t.Errorf("Default = %+v, want %+v", Default, want)
	}
}

func TestForReturnsACopy(t *testing.T) {
	p, err := Parse([]byte("rooms:\n  - {match: user, permissions: [a]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p.For(user).Permissions[0] = "changed"
	if got := p.For(user).Permissions; !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("the caller changed the policy: Permissions = %q", got)
	}
}

func TestLoad(t *testing.T) {
	for _, name := range []string{"example.yaml", "example.json"} {
		t.Run(name, func(t *testing.T) {
			p, err := Load(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			checkFor(t, p, example)
		})
	}
	t.Run("empty", func(t *testing.T) {
		p, err := Load(filepath.Join("testdata", "empty.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		checkFor(t, p, none)
	})
	t.Run("invalid", func(t *testing.T) {
		file := filepath.Join("testdata", "invalid.yaml")
		_, err := Load(file)
		if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), `rooms[0] (match "project:*"): maxClients -1`) {
			t.Fatalf("Load(%s) error = %v, want one naming the file, rule and field", file, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "missing.yaml")
		_, err := Load(file)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), file) {
			t.Fatalf("Load(%s) error = %v, want fs.ErrNotExist naming the file", file, err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "large.yaml")
		if err := os.WriteFile(file, []byte(strings.Repeat("\n", maxFileSize+100)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(file)
		if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("Load(%s) error = %v, want one naming the file and the size", file, err)
		}
	})
}

// TestDocExample keeps the package doc's example and testdata/example.yaml,
// which TestLoad checks, the same.
func TestDocExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("testdata", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("policy.go")
	if err != nil {
		t.Fatal(err)
	}
	var doc strings.Builder
	for line := range strings.Lines(string(example)) {
		fmt.Fprintf(&doc, "//\t%s", line)
	}
	if !strings.Contains(string(src), doc.String()) {
		t.Errorf("the package doc does not hold testdata/example.yaml as an example; want it to contain:\n%s", doc.String())
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"example.yaml", "example.json", "invalid.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("rooms:\n  - {match: 'user:[a-z]*', lowEventsPerSecond: 0.001}\ndefaults: {ttl: 0}\n"))
	f.Add([]byte(`{"rooms": [{"match": "global*", "lowEventsPerSecond": 1e6, "lowBurst": 9223372036854775807}]}`))
	f.Add([]byte("rooms: &a [*a]\n"))
	rooms := []room.Room{user, project, bigProject, room.Global, room.User("a"), room.Project("[]*?"), {}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a policy and an error")
			}
			return
		}
		for _, r := range rooms {
			got := p.For(r)
			if got.MaxClients < 0 || got.TTL < 0 || got.TTL > maxTTL || !(got.LowEventsPerSecond >= 0) || got.LowBurst < 0 {
				t.Fatalf("For(%s) = %+v: a field is out of range", r, got)
			}
			if (got.LowEventsPerSecond > 0) != (got.LowBurst > 0) {
				t.Fatalf("For(%s) = %+v: a rate needs a burst and a burst a rate", r, got)
			}
		}
	})
}
