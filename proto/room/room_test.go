package room_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/eventedge/eventedge/proto/room"
)

func TestParse(t *testing.T) {
	id64 := strings.Repeat("a", room.MaxIDLen)
	id65 := strings.Repeat("a", room.MaxIDLen+1)

	valid := []struct {
		name string
		want room.Room
	}{
		{"global", room.Global},
		{"user:u7", room.User("u7")},
		{"project:p1", room.Project("p1")},
		{"user:A-z_0-9", room.User("A-z_0-9")},
		{"project:" + id64, room.Project(id64)},
		{"user:global", room.User("global")},
		{"project:-", room.Project("-")},
	}
	for _, tc := range valid {
		t.Run("ok/"+tc.name, func(t *testing.T) {
			got, err := room.Parse(tc.name)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.name, err)
			}
			if got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.name, got, tc.want)
			}
			if !got.Valid() {
				t.Fatalf("Parse(%q) = %+v, which is not Valid", tc.name, got)
			}
		})
	}

	invalid := []struct {
		desc, name string
		// wantErr is a substring of the error, so that each case is shown to
		// fail for the reason it was written for.
		wantErr string
	}{
		{"empty", "", "want user:<id>"},
		{"missing colon", "projectp1", "want user:<id>"},
		{"missing colon user", "user", "want user:<id>"},
		{"unknown kind", "team:t1", "unknown room type"},
		{"empty kind", ":p1", "unknown room type"},
		{"upper-case kind", "Project:p1", "unknown room type"},
		{"global with id", "global:x", "unknown room type"},
		{"global with empty id", "global:", "unknown room type"},
		{"empty id", "project:", "id must be"},
		{"dot", "project:p.1", "id must be"},
		{"star", "project:*", "id must be"},
		{"gt", "project:>", "id must be"},
		{"space", "user:u 7", "id must be"},
		{"leading space", "user: u7", "id must be"},
		{"trailing space", "user:u7 ", "id must be"},
		{"tab", "user:u\t7", "id must be"},
		{"newline", "user:u7\n", "id must be"},
		{"carriage return", "user:u7\r", "id must be"},
		{"nul", "user:u\x007", "id must be"},
		{"unicode letter", "user:jürgen", "id must be"},
		{"unicode space", "user:u\u00a07", "id must be"},
		{"invalid utf-8", "user:u\xff", "id must be"},
		{"second colon", "user:u:7", "id must be"},
		{"slash", "project:a/b", "id must be"},
		{"65 chars", "project:" + id65, "id must be"},
	}
	for _, tc := range invalid {
		t.Run("bad/"+tc.desc, func(t *testing.T) {
			got, err := room.Parse(tc.name)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tc.name, got)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q) error %q, want it to contain %q", tc.name, err, tc.wantErr)
			}
			if got != (room.Room{}) {
				t.Fatalf("Parse(%q) returned %+v with its error, want the zero Room", tc.name, got)
			}
		})
	}
}

// TestParseErrorIsClipped checks that a huge room name is not echoed back in
// full: the error goes to the client that sent the name.
func TestParseErrorIsClipped(t *testing.T) {
	name := "user:" + strings.Repeat("x", 10000)
	_, err := room.Parse(name)
	if err == nil {
		t.Fatal("Parse accepted a 10005-byte name")
	}
	if len(err.Error()) > 300 {
		t.Fatalf("error is %d bytes long, want it clipped: %.100s…", len(err.Error()), err)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		room          room.Room
		name          string
		subject, live string
	}{
		{room.Global, "global", "evt.global", "live.global"},
		{room.User("u7"), "user:u7", "evt.user.u7", "live.user.u7"},
		{room.Project("p1"), "project:p1", "evt.project.p1", "live.project.p1"},
		{room.Project("A_b-9"), "project:A_b-9", "evt.project.A_b-9", "live.project.A_b-9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.room
			if got := r.String(); got != tc.name {
				t.Errorf("String() = %q, want %q", got, tc.name)
			}
			if got := r.Subject(); got != tc.subject {
				t.Errorf("Subject() = %q, want %q", got, tc.subject)
			}
			if got := r.LiveSubject(); got != tc.live {
				t.Errorf("LiveSubject() = %q, want %q", got, tc.live)
			}
			if got, err := room.Parse(r.String()); err != nil || got != r {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", got, err, r)
			}
			if got, err := room.FromSubject(r.Subject()); err != nil || got != r {
				t.Errorf("FromSubject(Subject()) = %+v, %v; want %+v", got, err, r)
			}
			if got, err := room.FromSubject(r.LiveSubject()); err != nil || got != r {
				t.Errorf("FromSubject(LiveSubject()) = %+v, %v; want %+v", got, err, r)
			}
		})
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		room room.Room
		want bool
	}{
		{room.Global, true},
		{room.User("u7"), true},
		{room.Project("p1"), true},
		{room.Room{}, false},
		{room.Room{Kind: room.KindGlobal, ID: "x"}, false},
		{room.User(""), false},
		{room.Project("p.1"), false},
		{room.Project(strings.Repeat("p", room.MaxIDLen+1)), false},
		{room.Room{Kind: 9, ID: "x"}, false},
	}
	for _, tc := range tests {
		if got := tc.room.Valid(); got != tc.want {
			t.Errorf("%+v.Valid() = %v, want %v", tc.room, got, tc.want)
		}
	}
}

func TestKindString(t *testing.T) {
	tests := map[room.Kind]string{
		room.KindUser:    "user",
		room.KindProject: "project",
		room.KindGlobal:  "global",
		0:                "unknown",
		42:               "unknown",
	}
	for k, want := range tests {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestFromSubject(t *testing.T) {
	valid := []struct {
		subject string
		want    room.Room
	}{
		{"evt.global", room.Global},
		{"live.global", room.Global},
		{"evt.user.u7", room.User("u7")},
		{"live.user.u7", room.User("u7")},
		{"evt.project.p1", room.Project("p1")},
		{"live.project.p1", room.Project("p1")},
		{"evt.user.global", room.User("global")},
	}
	for _, tc := range valid {
		t.Run("ok/"+tc.subject, func(t *testing.T) {
			got, err := room.FromSubject(tc.subject)
			if err != nil {
				t.Fatalf("FromSubject(%q): %v", tc.subject, err)
			}
			if got != tc.want {
				t.Fatalf("FromSubject(%q) = %+v, want %+v", tc.subject, got, tc.want)
			}
		})
	}

	invalid := []string{
		"",
		"evt",
		"evt.",
		"live",
		"foo.user.a",
		"evtx.user.a",
		"EVT.user.a",
		".evt.user.a",
		"evt.user",
		"evt.user.",
		"evt.user.a.b",
		"live.project.p1.x",
		"evt.user.*",
		"evt.user.>",
		"evt.>",
		"live.*.p1",
		"evt.global.x",
		"evt.global.",
		"evt.team.t1",
		"evt.user:a",
		"evt.user.a:b",
		"evt.user.a b",
		"evt.evt.user.a",
		"live.evt.user.a",
		"evt..user.a",
		"evt.user..a",
	}
	for _, subject := range invalid {
		t.Run("bad/"+subject, func(t *testing.T) {
			got, err := room.FromSubject(subject)
			if err == nil {
				t.Fatalf("FromSubject(%q) = %+v, want error", subject, got)
			}
		})
	}
}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"global", "user:u7", "project:p1", "project:" + strings.Repeat("a", 64),
		"", ":", "global:x", "user:", "user:a.b", "user:*", "user:>", "user:a b",
		"user:a\tb", "user:\n", "user:ü", "project:" + strings.Repeat("a", 65),
		"team:x", "user:a:b", "evt.user.a", "live.project.p1", "evt.global",
		"evt.user.a.b", "foo.user.a", "evt.user.*",
	} {
		f.Add(s)
	}
}

// FuzzParse checks that no room name Parse accepts can put a token separator,
// a wildcard or whitespace into a subject, and that names and subjects
// round-trip.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, name string) {
		r, err := room.Parse(name)
		if err != nil {
			return
		}
		if !r.Valid() {
			t.Fatalf("Parse(%q) = %+v, not Valid", name, r)
		}
		wantTokens := 3
		if r.Kind == room.KindGlobal {
			wantTokens = 2
		}
		for _, subj := range []string{r.Subject(), r.LiveSubject()} {
			tokens := strings.Split(subj, ".")
			if len(tokens) != wantTokens {
				t.Fatalf("Parse(%q): subject %q has %d tokens, want %d", name, subj, len(tokens), wantTokens)
			}
			for _, tok := range tokens {
				if tok == "" {
					t.Fatalf("Parse(%q): subject %q has an empty token", name, subj)
				}
			}
			if strings.ContainsAny(subj, "*>") {
				t.Fatalf("Parse(%q): subject %q has a wildcard", name, subj)
			}
			if i := strings.IndexFunc(subj, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }); i >= 0 {
				t.Fatalf("Parse(%q): subject %q has whitespace or a control character at %d", name, subj, i)
			}
			got, err := room.FromSubject(subj)
			if err != nil || got != r {
				t.Fatalf("Parse(%q) = %+v; FromSubject(%q) = %+v, %v", name, r, subj, got, err)
			}
		}
		if got, err := room.Parse(r.String()); err != nil || got != r {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v, %v", name, r, r.String(), got, err)
		}
		if r.String() != name {
			t.Fatalf("Parse(%q) = %+v, whose String() is %q: a room has one name", name, r, r.String())
		}
	})
}

// FuzzFromSubject checks that FromSubject only accepts the canonical subjects
// of valid rooms.
func FuzzFromSubject(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, subject string) {
		r, err := room.FromSubject(subject)
		if err != nil {
			return
		}
		if !r.Valid() {
			t.Fatalf("FromSubject(%q) = %+v, not Valid", subject, r)
		}
		if subject != r.Subject() && subject != r.LiveSubject() {
			t.Fatalf("FromSubject(%q) = %+v, whose subjects are %q and %q", subject, r, r.Subject(), r.LiveSubject())
		}
	})
}
