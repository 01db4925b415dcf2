package e2e_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/eventedge/eventedge/services/internal/browsertest"
)

// card is the JavaScript expression of a task's card.
func card(id string) string {
	return fmt.Sprintf(`document.querySelector('.task[data-task-id="%s"]')`, id)
}

// TestMemberAndViewerSeeARunLive logs a member and a viewer in through the
// development login, in two tabs. A task created through the API appears on
// both boards within a second; the member runs it from the board; both see
// the progress bar reach 100 % and the status succeed, only the member sees
// its log lines.
func TestMemberAndViewerSeeARunLive(t *testing.T) {
	s := startSystem(t, systemOptions{})
	b := browsertest.Start(t, browsertest.Options{})
	member, viewer := openTab(b, ""), openTab(b, "viewer")
	s.login(member, "member", "e2e")
	s.login(viewer, "viewer", "e2e")

	// Live: the task appears without a reload.
	id := s.createTask(s.token("admin", "e2e"), "e2e", "Render the report")
	answered := time.Now().UnixMilli()
	for name, tab := range map[string]*browsertest.Tab{"member": member, "viewer": viewer} {
		tab.WaitFor(card(id)+" !== null", 15*time.Second, "the task on the "+name+"'s board")
		// The page's clock and ours are the machine's: when the card
		// appeared, as the page's observer saw it, minus when the API
		// answered.
		d := int64(browsertest.Eval[float64](tab, fmt.Sprintf("__probe.cards[%q]", id))) - answered
		if d > 1000 {
			t.Errorf("the task reached the %s's board %d ms after the API answered, want within 1 s", name, d)
		} else {
			t.Logf("the task reached the %s's board %d ms after the API answered", name, d)
		}
		if got := browsertest.Eval[string](tab, card(id)+".querySelector('.task-title').textContent"); got != "Render the report" {
			t.Errorf("%s sees the title %q", name, got)
		}
	}
	if n := browsertest.Eval[int](viewer, card(id)+`.querySelectorAll('button[data-action="run"]').length`); n != 0 {
		t.Errorf("the viewer (no tasks:write) has %d run buttons", n)
	}

	// Two more tasks, so that the board (and its screenshot) has some life.
	s.createTask(s.token("admin", "e2e"), "e2e", "Write the changelog")
	s.createTask(s.token("admin", "e2e"), "e2e", "Review open issues")

	// Run it from the member's board.
	member.Run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`.task[data-task-id="%s"] button[data-action="run"]`, id))))
	member.WaitFor(card(id)+`.dataset.status !== "TASK_STATUS_TODO" && (`+card(id)+`.querySelector('[role="progressbar"]').getAttribute("aria-valuenow") >= 40 || `+card(id)+`.dataset.status === "TASK_STATUS_SUCCEEDED")`, 30*time.Second, "the run to get going")
	browsertest.Eval[any](member, "scrollTo(0, 0)")
	running := member.Screenshot(shots, "board-running.png")
	done := card(id) + `?.dataset.status === "TASK_STATUS_SUCCEEDED" && ` +
		card(id) + `.querySelector('[role="progressbar"]').getAttribute("aria-valuenow") === "100"`
	member.WaitFor(done, 30*time.Second, "the member's card to show the run succeeded at 100 %")
	viewer.WaitFor(done, 15*time.Second, "the viewer's card to show the run succeeded at 100 %")

	lines := browsertest.Eval[int](member, card(id)+".querySelectorAll('.task-logs .log-line').length")
	if lines == 0 {
		t.Error("the member sees no log lines")
	}
	if n := browsertest.Eval[int](viewer, card(id)+".querySelectorAll('.log-line').length"); n != 0 {
		t.Errorf("the viewer (no logs:read) sees %d log lines", n)
	}
	if !browsertest.Eval[bool](viewer, card(id)+".querySelector('.task-logs-denied') !== null && "+card(id)+".querySelector('.task-logs') === null") {
		t.Error("the viewer's card has no .task-logs-denied notice in place of the log panel")
	}
	stage := browsertest.Eval[string](member, card(id)+".querySelector('.task-stage').textContent")
	t.Logf("member: %d log lines, stage %q", lines, stage)

	for name, tab := range map[string]*browsertest.Tab{"member": member, "viewer": viewer} {
		// The bar moved through the run, not only to 100 % at its end.
		seen := browsertest.Eval[[]float64](tab, fmt.Sprintf("__probe.progress[%q] ?? []", id))
		if !slices.ContainsFunc(seen, func(v float64) bool { return v > 0 && v < 100 }) {
			t.Errorf("%s's progress bar showed %v: no value between 0 and 100 during the run", name, seen)
		}
		assertNoDuplicates(t, name, tab)
		assertClean(t, name, tab)
	}
	member.Screenshot(shots, "board-member.png")
	viewer.Screenshot(shots, "board-viewer.png")
	if *updateDocs {
		b, err := os.ReadFile(running)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "..", "docs", "dashboard.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEdgeRestartResumes stops the edge node under an open board: the
// indicator says reconnecting; tasks created and changed meanwhile appear
// once the node is back, each event exactly once.
func TestEdgeRestartResumes(t *testing.T) {
	s := startSystem(t, systemOptions{})
	b := browsertest.Start(t, browsertest.Options{})
	tab := openTab(b, "")
	s.login(tab, "member", "e2e")
	admin := s.token("admin", "e2e")
	before := s.createTask(admin, "e2e", "Before the restart")
	tab.WaitFor(card(before)+" !== null", 15*time.Second, "the first task")

	edge := s.edges[0].proc
	if err := edge.Stop(); err != nil {
		t.Fatalf("stop the edge: %v", err)
	}
	tab.WaitFor(`document.querySelector("#conn").dataset.state === "reconnecting"`, 15*time.Second, "the indicator to show reconnecting")
	text := browsertest.Eval[string](tab, `document.querySelector("#conn").textContent`)
	if !strings.Contains(text, "Reconnecting") {
		t.Errorf("indicator text %q, want it to say Reconnecting", text)
	}
	if live := browsertest.Eval[string](tab, `document.querySelector("#conn").getAttribute("aria-live")`); live != "polite" {
		t.Errorf("indicator aria-live=%q, want polite", live)
	}
	tab.Screenshot(shots, "reconnecting.png")
	defer assertClean(t, "member", tab)

	// While the node is down: three tasks, a change and a deletion.
	var during []string
	for i := range 3 {
		during = append(during, s.createTask(admin, "e2e", fmt.Sprintf("While away %d", i+1)))
	}
	s.call(admin, http.MethodPatch, "/v1/projects/e2e/tasks/"+during[0], map[string]string{"title": "While away, renamed"}, http.StatusOK, nil)
	s.call(admin, http.MethodDelete, "/v1/projects/e2e/tasks/"+before, nil, http.StatusNoContent, nil)

	edge.Restart()
	tab.WaitFor(`document.querySelector("#conn").dataset.state === "connected"`, 30*time.Second, "the indicator to show connected again")
	for _, id := range during {
		tab.WaitFor(card(id)+" !== null", 15*time.Second, "a task created while the node was down")
	}
	tab.WaitFor(card(before)+" === null", 15*time.Second, "the task deleted while the node was down to disappear")
	if got := browsertest.Eval[string](tab, card(during[0])+".querySelector('.task-title').textContent"); got != "While away, renamed" {
		t.Errorf("renamed task shows %q", got)
	}
	if n := browsertest.Eval[int](tab, `document.querySelectorAll(".task").length`); n != 3 {
		t.Errorf("%d cards on the board, want 3", n)
	}
	// Every event of the room exactly once in the activity list: 4 creates,
	// 1 update, 1 delete.
	assertNoDuplicates(t, "member", tab)
	if n := browsertest.Eval[int](tab, `document.querySelectorAll("#activity li[data-seq]").length`); n != 6 {
		t.Errorf("%d activity entries, want 6 (4 created, 1 updated, 1 deleted)", n)
	}
	if n := browsertest.Eval[int](tab, `document.querySelectorAll("#notice.reset, #notice [data-kind=reset]").length`); n != 0 {
		t.Errorf("a reset notice after a resume that lost nothing")
	}
}

// TestSystemStatusDegraded shows sysmon's verdict: healthy with two edge
// nodes, degraded with an alert once one of them goes silent.
func TestSystemStatusDegraded(t *testing.T) {
	s := startSystem(t, systemOptions{edges: 2})
	b := browsertest.Start(t, browsertest.Options{})
	tab := openTab(b, "")
	s.login(tab, "viewer", "e2e")
	tab.WaitFor(`document.querySelector("#system").dataset.health === "healthy"`, 20*time.Second, "the status panel to show healthy")

	if err := s.edges[1].proc.Stop(); err != nil {
		t.Fatalf("stop edge-b: %v", err)
	}
	tab.WaitFor(`document.querySelector("#system").dataset.health === "degraded"`, 20*time.Second, "the status panel to show degraded")
	alerts := browsertest.Eval[string](tab, `document.querySelector("#alerts").textContent`)
	if !strings.Contains(alerts, "edge-b") {
		t.Errorf("alerts %q do not name the silent node edge-b", alerts)
	}
	tab.Screenshot(shots, "degraded.png")
	assertClean(t, "viewer", tab)
}

// TestNarrowScreen: at a phone's width the page does not scroll
// sideways, the indicator and the cards are on screen, the actions usable.
func TestNarrowScreen(t *testing.T) {
	s := startSystem(t, systemOptions{})
	b := browsertest.Start(t, browsertest.Options{Width: 390, Height: 844})
	tab := openTab(b, "")
	tab.Run(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2)))
	s.login(tab, "member", "e2e")
	id := s.createTask(s.token("admin", "e2e"), "e2e", "A task with a rather long title that has to wrap on a narrow phone screen")
	tab.WaitFor(card(id)+" !== null", 15*time.Second, "the task")

	if w, iw := browsertest.Eval[int](tab, "document.documentElement.scrollWidth"), browsertest.Eval[int](tab, "innerWidth"); w > iw {
		t.Errorf("the page is %d px wide in a %d px viewport: it scrolls sideways", w, iw)
	}
	inView := func(expr string) bool {
		return browsertest.Eval[bool](tab, `(() => { const r = `+expr+`.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= innerWidth })()`)
	}
	for _, el := range []string{`document.querySelector("#conn")`, card(id), card(id) + `.querySelector('button[data-action="run"]')`, `document.querySelector("#new-task-title")`} {
		if !inView(el) {
			t.Errorf("%s is not within the screen's width", el)
		}
	}
	// Creating from the form works on the phone too.
	tab.Run(
		chromedp.SendKeys(chromedp.CSS("#new-task-title"), "Added from the phone"),
		chromedp.Click(chromedp.CSS("#new-task-submit")),
	)
	tab.WaitFor(`[...document.querySelectorAll(".task .task-title")].some((e) => e.textContent === "Added from the phone")`, 15*time.Second, "the task created from the form")
	tab.Screenshot(shots, "narrow.png")
	assertClean(t, "member", tab)
}

// TestTokenFromFragment opens the board the way an embedding application
// does, with the token in the URL's fragment: the fragment leaves the
// address bar, the board loads. A token the edge refuses shows
// "unauthorized" with a way to log in again.
func TestTokenFromFragment(t *testing.T) {
	s := startSystem(t, systemOptions{})
	b := browsertest.Start(t, browsertest.Options{})
	tab := openTab(b, "")
	id := s.createTask(s.token("admin", "e2e"), "e2e", "Seen through an embedded link")
	tab.Navigate(s.dash + "/#token=" + s.token("member", "e2e") + "&project=e2e")
	s.waitBoard(tab, "e2e")
	tab.WaitFor(card(id)+" !== null", 15*time.Second, "the task")
	if h := browsertest.Eval[string](tab, "location.hash"); h != "" {
		t.Errorf("location.hash = %q after loading: the token stays in the address bar", h)
	}

	bad := openTab(b, "bad token")
	bad.Navigate(s.dash + "/#token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl&project=e2e")
	bad.WaitFor(`document.querySelector("#conn")?.dataset.state === "unauthorized"`, 15*time.Second, "the indicator to show unauthorized")
	if !browsertest.Eval[bool](bad, `(() => { const b = document.querySelector("#relogin"); return b !== null && b.offsetParent !== null })()`) {
		t.Error("no visible #relogin action when unauthorized")
	}
	assertClean(t, "member", tab)
	assertClean(t, "bad token", bad)
}

// assertNoDuplicates checks that no event is shown twice: one card per
// task id, one activity entry per seq.
func assertNoDuplicates(t *testing.T, who string, tab *browsertest.Tab) {
	t.Helper()
	dupCards := browsertest.Eval[[]string](tab, `(() => { const ids = [...document.querySelectorAll(".task")].map((e) => e.dataset.taskId); return ids.filter((id, i) => ids.indexOf(id) !== i) })()`)
	dupSeqs := browsertest.Eval[[]string](tab, `(() => { const s = [...document.querySelectorAll("#activity li[data-seq]")].map((e) => e.dataset.seq); return s.filter((x, i) => s.indexOf(x) !== i) })()`)
	if len(dupCards) > 0 || len(dupSeqs) > 0 {
		t.Errorf("%s: duplicate cards %v, duplicate activity seqs %v", who, dupCards, dupSeqs)
	}
}

// TestResetReloadsBoard keeps only three events per room: while the edge
// node is down, more changes happen than the room keeps, so the resume
// cannot replay them. The edge sends a reset; the board reloads from the
// task API and shows every task (and not the deleted one), says so, and
// continues live.
func TestResetReloadsBoard(t *testing.T) {
	s := startSystem(t, systemOptions{edgeArgs: []string{"--stream-max-msgs-per-subject", "3"}})
	b := browsertest.Start(t, browsertest.Options{})
	tab := openTab(b, "")
	s.login(tab, "member", "e2e")
	admin := s.token("admin", "e2e")
	gone := s.createTask(admin, "e2e", "Deleted while away")
	tab.WaitFor(card(gone)+" !== null", 15*time.Second, "the first task")

	edge := s.edges[0].proc
	if err := edge.Stop(); err != nil {
		t.Fatalf("stop the edge: %v", err)
	}
	var during []string
	for i := range 5 {
		during = append(during, s.createTask(admin, "e2e", fmt.Sprintf("Created while away %d", i+1)))
	}
	s.call(admin, http.MethodDelete, "/v1/projects/e2e/tasks/"+gone, nil, http.StatusNoContent, nil)
	edge.Restart()

	tab.WaitFor(`document.querySelector("#notice")?.dataset.kind === "reset" && document.querySelector("#notice").offsetParent !== null`, 30*time.Second, "the reset notice")
	for _, id := range during {
		tab.WaitFor(card(id)+" !== null", 15*time.Second, "a task created while away (from the reload)")
	}
	tab.WaitFor(card(gone)+" === null", 15*time.Second, "the deleted task to disappear")
	if n := browsertest.Eval[int](tab, `document.querySelectorAll(".task").length`); n != 5 {
		t.Errorf("%d cards after the reload, want 5", n)
	}
	// Live again after the reset.
	after := s.createTask(admin, "e2e", "After the reset")
	tab.WaitFor(card(after)+" !== null", 15*time.Second, "a task created after the reset")
	assertNoDuplicates(t, "member", tab)
	tab.Screenshot(shots, "reset.png")
	assertClean(t, "member", tab)
}

// TestEditAndCancel drives the other two actions through the board: an
// edit (the task API's PATCH with If-Match) and a cancel of a running run;
// the cards change when the events arrive.
func TestEditAndCancel(t *testing.T) {
	s := startSystem(t, systemOptions{})
	b := browsertest.Start(t, browsertest.Options{})
	tab := openTab(b, "")
	s.login(tab, "member", "e2e")
	id := s.createTask(s.token("admin", "e2e"), "e2e", "Before the edit")
	tab.WaitFor(card(id)+" !== null", 15*time.Second, "the task")

	sel := fmt.Sprintf(`.task[data-task-id="%s"]`, id)
	tab.Run(chromedp.Click(chromedp.CSS(sel + ` button[data-action="edit"]`)))
	tab.WaitFor(card(id)+".querySelector('form.task-edit') && !"+card(id)+".querySelector('form.task-edit').hidden", 10*time.Second, "the edit form")
	browsertest.Eval[any](tab, card(id)+`.querySelector('form.task-edit input[type="text"]').value = "", null`)
	tab.Run(
		chromedp.SendKeys(chromedp.CSS(sel+` form.task-edit input[type="text"]`), "After the edit"),
		chromedp.Click(chromedp.CSS(sel+` form.task-edit button[type="submit"]`)),
	)
	tab.WaitFor(card(id)+`.querySelector('.task-title').textContent === "After the edit"`, 15*time.Second, "the edited title")
	var task struct{ Title string }
	s.call(s.token("admin", "e2e"), http.MethodGet, "/v1/projects/e2e/tasks/"+id, nil, http.StatusOK, &task)
	if task.Title != "After the edit" {
		t.Errorf("the task API holds the title %q", task.Title)
	}

	tab.Run(chromedp.Click(chromedp.CSS(sel + ` button[data-action="run"]`)))
	tab.WaitFor(card(id)+`.dataset.status === "TASK_STATUS_RUNNING"`, 15*time.Second, "the run to start")
	tab.Run(chromedp.Click(chromedp.CSS(sel + ` button[data-action="cancel"]`)))
	tab.WaitFor(card(id)+`.dataset.status === "TASK_STATUS_CANCELLED"`, 15*time.Second, "the run to be cancelled")
	assertNoDuplicates(t, "member", tab)
	assertClean(t, "member", tab)
}
