package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite k8s/base/monitoring/prometheusrule.yaml from prometheus/alerts.yml")

const (
	alertsFile         = "prometheus/alerts.yml"
	prometheusRuleFile = "k8s/base/monitoring/prometheusrule.yaml"
	operationsDoc      = repoRoot + "/docs/operations.md"
	runbookPrefix      = "https://github.com/eventedge/eventedge/blob/main/docs/operations.md#"
	validSeverities    = "critical warning info"
)

var promql = parser.NewParser(parser.Options{})

// parseAlerts parses alerts.yml the way promtool check rules does: unknown
// fields refused, every expression parsed as PromQL, every template parsed.
func parseAlerts(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	rgs, errs := rulefmt.ParseFile(alertsFile, false, model.LegacyValidation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return rgs
}

// TestAlertRules checks alerts.yml beyond what the parser does: every rule
// is an alert with a for, a known severity, a summary, a description and a
// runbook_url into docs/operations.md whose anchor is
// alert-<name in lower case> and exists there.
func TestAlertRules(t *testing.T) {
	rgs := parseAlerts(t)
	anchors := markdownAnchors(string(readFile(t, operationsDoc)))
	seen := map[string]bool{}
	n := 0
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			n++
			name := r.Alert
			if name == "" {
				t.Errorf("group %s: recording rule %q: only alerts belong in %s", g.Name, r.Record, alertsFile)
				continue
			}
			if seen[name] {
				t.Errorf("alert %s: defined twice", name)
			}
			seen[name] = true
			if r.For == 0 {
				t.Errorf("alert %s: no for: one bad scrape would page", name)
			}
			if !strings.Contains(" "+validSeverities+" ", " "+r.Labels["severity"]+" ") || r.Labels["severity"] == "" {
				t.Errorf("alert %s: severity %q, want one of %s", name, r.Labels["severity"], validSeverities)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", name, a)
				}
			}
			want := runbookPrefix + "alert-" + strings.ToLower(name)
			switch url := r.Annotations["runbook_url"]; {
			case url != want:
				t.Errorf("alert %s: runbook_url %q, want %q", name, url, want)
			case !anchors["alert-"+strings.ToLower(name)]:
				t.Errorf("alert %s: docs/operations.md has no section with anchor %q (a heading \"Alert: %s\" or <a id=\"alert-%s\"></a>)",
					name, "alert-"+strings.ToLower(name), name, strings.ToLower(name))
			}
		}
	}
	if n == 0 {
		t.Fatalf("%s has no rules", alertsFile)
	}
}

var (
	headingRE   = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
	explicitIDs = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	slugDropRE  = regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
)

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown page (lower case, punctuation dropped, spaces to hyphens,
// "-1", "-2" … for repeats) and the explicit <a id> or <a name> anchors.
func markdownAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	count := map[string]int{}
	inFence := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			slug := strings.ReplaceAll(slugDropRE.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
			if c := count[slug]; c > 0 {
				anchors[fmt.Sprintf("%s-%d", slug, c)] = true
			} else {
				anchors[slug] = true
			}
			count[slug]++
		}
		for _, m := range explicitIDs.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
	}
	return anchors
}

func TestMarkdownAnchors(t *testing.T) {
	got := markdownAnchors("# Operating eventedge\n## Alert: EdgeNodeFillHigh\n### `JobFailuresHigh`\n```\n# not a heading\n```\n## Alert: EdgeNodeFillHigh\n<a id=\"alert-x\"></a>\n")
	for _, want := range []string{"operating-eventedge", "alert-edgenodefillhigh", "alert-edgenodefillhigh-1", "jobfailureshigh", "alert-x"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a line in a code fence became a heading")
	}
}

// TestPrometheusRuleMatchesAlerts checks that the PrometheusRule the
// overlays deploy has exactly alerts.yml's groups. With -update it first
// rewrites the PrometheusRule from alerts.yml (comments kept).
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	alerts := readFile(t, alertsFile)
	if *update {
		if err := os.WriteFile(prometheusRuleFile, prometheusRuleFrom(t, alerts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want struct {
		Groups any `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(alerts, &want); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	for name := range kustomizations {
		o := decoded(t, name)
		if len(o.prometheusRules) != 1 {
			t.Fatalf("%s: %d PrometheusRules, want 1", name, len(o.prometheusRules))
		}
		b, err := json.Marshal(o.prometheusRules[0].Spec.Groups)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want.Groups) {
			gb, _ := json.MarshalIndent(got, "", " ")
			wb, _ := json.MarshalIndent(want.Groups, "", " ")
			t.Errorf("%s: the PrometheusRule's groups differ from %s: run go test -run TestPrometheusRule -update\n got: %s\nwant: %s", name, alertsFile, gb, wb)
		}
	}
}

// prometheusRuleFrom writes alerts.yml's groups, text and comments as they
// are, under a PrometheusRule's spec.
func prometheusRuleFrom(t *testing.T, alerts []byte) []byte {
	t.Helper()
	i := bytes.Index(alerts, []byte("\ngroups:\n"))
	if i < 0 {
		t.Fatalf("%s: no top-level groups:", alertsFile)
	}
	var b bytes.Buffer
	b.WriteString(`# GENERATED from deploy/prometheus/alerts.yml by
#   cd deploy && go test -run TestPrometheusRule -update
# Do not edit: edit alerts.yml and regenerate (a test checks they match).
# The label "release: kube-prometheus-stack" matches the default
# ruleSelector of the kube-prometheus-stack chart; change it to your
# Prometheus's selector.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: eventedge
  labels:
    release: kube-prometheus-stack
spec:
`)
	for _, line := range strings.SplitAfter(string(alerts[i+1:]), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

// alertMetricNames returns the metric names the alert expressions select.
func alertMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	for _, g := range parseAlerts(t).Groups {
		for _, r := range g.Rules {
			for _, n := range exprMetricNames(t, r.Expr) {
				names[n] = append(names[n], "alert "+r.Alert)
			}
		}
	}
	return names
}

// exprMetricNames returns the metric names of every vector selector of a
// PromQL expression, sorted.
func exprMetricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Fatalf("expression %q: %v", expr, err)
	}
	set := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel {
						name = m.Value
					}
				}
			}
			set[name] = true
		}
		return nil
	})
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
