package prometheus_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	kprom "github.com/kstreams-go/kstreams/metrics/prometheus"
)

type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricName = regexp.MustCompile(`\bkstreams_[a-z0-9_]+`)

// TestDashboard checks that the Grafana dashboard is a valid dashboard
// (fields Grafana needs, unique panel ids, panels on the 24-column grid
// without overlap, a query per target) and that its queries use only
// metrics the Collector exports, and every one of them.
func TestDashboard(t *testing.T) {
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(kprom.Dashboard)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
		t.Fatalf("dashboard: title %q, uid %q, schema version %d, %d panels", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource variable: %v", vars)
	}
	c := kprom.New()
	exported := c.MetricNames()
	histograms := c.Histograms()
	used := map[string]bool{}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d zero or used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.Type == "" || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %d: title %q, type %q, datasource %+v", p.ID, p.Title, p.Type, p.Datasource)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: grid position %+v off the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || q.Expr == "" || strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
				t.Errorf("panel %q: query %q (ref %q) empty or unbalanced", p.Title, q.Expr, q.RefID)
			}
			names := metricName.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q uses no kstreams metric", p.Title, q.Expr)
			}
			for _, n := range names {
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if h := strings.TrimSuffix(n, suffix); h != n && slices.Contains(histograms, h) {
						base = h
					}
				}
				if !slices.Contains(exported, base) {
					t.Errorf("panel %q: query uses %s, which the Collector does not export", p.Title, n)
				}
				used[base] = true
			}
		}
	}
	for _, n := range exported {
		if !used[n] {
			t.Errorf("metric %s is on no panel", n)
		}
	}
}
