package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"sigs.k8s.io/yaml"
)

const (
	grafanaDashboard = "grafana/eventedge.json"
	adapterValues    = "k8s/prometheus-adapter/values.yaml"
)

// metricNameRE finds the metric names the services register: string
// literals with the prefixes they use.
var metricNameRE = regexp.MustCompile(`"((?:eventedge|sysmon)_[a-z0-9_]+)"`)

// exportedMetrics returns the metric names in the Go sources of the
// services (test files excluded: a name only a test mentions is not
// exported). It reads files only.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{"services", "proto", "scripts"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range metricNameRE.FindAllSubmatch(b, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 20 {
		t.Fatalf("found %d metric names in the Go sources; is the repository there?", len(names))
	}
	return names
}

// prometheusSeries are the series Prometheus writes itself for every
// target: the only names a rule may use that no service exports (ServiceDown
// and SysmonDown need them: nothing else fires for a process that is gone).
var prometheusSeries = map[string]bool{"up": true}

// exported reports whether name is a metric the services export, a series
// Prometheus derives from one of their histograms, or one it writes itself.
func exported(names map[string]bool, name string) bool {
	if names[name] || prometheusSeries[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// TestMetricNamesExist checks every metric name the alerts, the Grafana
// dashboard and the Prometheus adapter use against the Go sources.
func TestMetricNamesExist(t *testing.T) {
	names := exportedMetrics(t)
	used := alertMetricNames(t)
	for n, where := range grafanaMetricNames(t) {
		used[n] = append(used[n], where...)
	}
	for n, where := range adapterMetricNames(t) {
		used[n] = append(used[n], where...)
	}
	var missing []string
	for n, where := range used {
		if !exported(names, n) {
			missing = append(missing, n+" (in "+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("metric %s: no service exports it", m)
	}
}

// grafanaMetricNames parses the dashboard, checks its structure and
// returns the metric names of its queries.
func grafanaMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, grafanaDashboard), &dash); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("%s: no title or uid", grafanaDashboard)
	}
	// Grafana's own variables are not PromQL: give them values first.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	names := map[string][]string{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d twice", grafanaDashboard, p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", grafanaDashboard, p.Title)
		}
		for _, q := range p.Targets {
			for _, n := range exprMetricNames(t, vars.Replace(q.Expr)) {
				names[n] = append(names[n], "Grafana panel "+p.Title)
			}
		}
	}
	labelValues := regexp.MustCompile(`label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	for _, v := range dash.Templating.List {
		b, _ := json.Marshal(v.Query)
		for _, m := range labelValues.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = append(names[m[1]], "Grafana variable "+v.Name)
		}
	}
	return names
}

// adapterRules reads the Prometheus adapter's custom rules.
type adapterRule struct {
	SeriesQuery string `json:"seriesQuery"`
	Resources   struct {
		Overrides map[string]struct {
			Resource string `json:"resource"`
		} `json:"overrides"`
	} `json:"resources"`
	Name struct {
		Matches string `json:"matches"`
		As      string `json:"as"`
	} `json:"name"`
	MetricsQuery string `json:"metricsQuery"`
}

func adapterRules(t *testing.T) []adapterRule {
	t.Helper()
	var v struct {
		Prometheus struct {
			URL  string `json:"url"`
			Port int    `json:"port"`
		} `json:"prometheus"`
		Rules struct {
			Default bool          `json:"default"`
			Custom  []adapterRule `json:"custom"`
		} `json:"rules"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, adapterValues), &v); err != nil {
		t.Fatalf("%s: %v", adapterValues, err)
	}
	return v.Rules.Custom
}

func adapterMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	for _, r := range adapterRules(t) {
		for _, n := range exprMetricNames(t, r.SeriesQuery) {
			names[n] = append(names[n], "adapter rule "+r.Name.As)
		}
	}
	return names
}

// TestHPAMetricsHaveAdapterRules checks that every Pods metric an HPA
// scales on is served by a Prometheus adapter rule that maps pods.
func TestHPAMetricsHaveAdapterRules(t *testing.T) {
	rules := adapterRules(t)
	served := map[string]bool{}
	for _, r := range rules {
		if !regexp.MustCompile(r.Name.Matches).MatchString(firstName(t, r.SeriesQuery)) {
			t.Errorf("adapter rule %s: name.matches %q does not match its series %s", r.Name.As, r.Name.Matches, r.SeriesQuery)
		}
		if r.Resources.Overrides["pod"].Resource != "pod" || r.Resources.Overrides["namespace"].Resource != "namespace" {
			t.Errorf("adapter rule %s: maps no pod and namespace labels: a Pods metric needs both", r.Name.As)
		}
		served[r.Name.As] = true
	}
	n := 0
	for name := range kustomizations {
		for _, h := range decoded(t, name).hpas {
			for _, m := range h.Spec.Metrics {
				if m.Type != autoscalingv2.PodsMetricSourceType {
					continue
				}
				n++
				if !served[m.Pods.Metric.Name] {
					t.Errorf("%s: HorizontalPodAutoscaler %s scales on %s, which no rule in %s serves", name, h.Name, m.Pods.Metric.Name, adapterValues)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no HPA scales on a Pods metric: the edge's should (connections per pod)")
	}
}

func firstName(t *testing.T, expr string) string {
	t.Helper()
	if names := exprMetricNames(t, expr); len(names) == 1 {
		return names[0]
	}
	t.Fatalf("%q: want exactly one metric", expr)
	return ""
}
