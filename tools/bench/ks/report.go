package main

import (
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	start            time.Time
	wall             time.Duration
	results          []result // every run, in the order they ran
	recovery         []recovery
	loadMin, loadMax float64 // 1-minute load average sampled before each run
}

func (r *report) add(res result) { r.results = append(r.results, res) }

// sampleLoad records the 1-minute load average.
func (r *report) sampleLoad() {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err == nil {
		r.loadMin, r.loadMax = math.Min(r.loadMin, l), math.Max(r.loadMax, l)
	}
}

// row is one scenario × contender over the rounds: medians and spreads.
type row struct {
	scenario, impl    string
	cached            bool
	runs, failed      int
	errs              []string
	rate              stat
	rssMiB, cpu       stat
	startup, p50, p99 stat
}

// stat is the median and range of one figure over the rounds.
type stat struct{ med, lo, hi float64 }

func newStat(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med: med, lo: v[0], hi: v[len(v)-1]}
}

// spread is the range as a fraction of the median, e.g. "±12%": half of
// (max − min) / median.
func (s stat) spread() string {
	if s.med <= 0 || s.hi == s.lo {
		return ""
	}
	return fmt.Sprintf("±%.0f%%", 50*(s.hi-s.lo)/s.med)
}

// rows aggregates the runs, in the order each contender first ran per
// scenario.
func (r *report) rows() []row {
	var rows []row
	idx := map[[2]string]int{}
	vals := map[[2]string]*[7][]float64{}
	for _, res := range r.results {
		k := [2]string{res.scenario, res.impl}
		i, ok := idx[k]
		if !ok {
			i = len(rows)
			idx[k] = i
			rows = append(rows, row{scenario: res.scenario, impl: res.impl, cached: res.cached})
			vals[k] = &[7][]float64{}
		}
		rw := &rows[i]
		rw.runs++
		if res.err != "" {
			rw.failed++
			rw.errs = append(rw.errs, res.err)
			continue
		}
		v := vals[k]
		v[0] = append(v[0], res.rate())
		v[1] = append(v[1], float64(res.rssKiB)/1024)
		v[2] = append(v[2], res.cpu)
		v[3] = append(v[3], res.startup.Seconds())
		v[4] = append(v[4], float64(res.p50))
		v[5] = append(v[5], float64(res.p99))
	}
	for k, i := range idx {
		v := vals[k]
		rw := &rows[i]
		rw.rate, rw.rssMiB, rw.cpu, rw.startup = newStat(v[0]), newStat(v[1]), newStat(v[2]), newStat(v[3])
		rw.p50, rw.p99 = newStat(v[4]), newStat(v[5])
	}
	// Group by scenario, keeping the order of first appearance.
	order := map[string]int{}
	for _, rw := range rows {
		if _, ok := order[rw.scenario]; !ok {
			order[rw.scenario] = len(order)
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int { return order[a.scenario] - order[b.scenario] })
	return rows
}

func findRow(rows []row, scenario, impl string) *row {
	for i := range rows {
		if rows[i].scenario == scenario && rows[i].impl == impl && rows[i].runs > rows[i].failed {
			return &rows[i]
		}
	}
	return nil
}

var scenarioTitle = map[string]string{
	"stateless": "1. stateless map + filter",
	"count":     "2. count by key (Pebble / RocksDB)",
	"window":    "3. tumbling 1-min window count (Pebble / RocksDB)",
	"slow":      "4. slow I/O, 5 ms per record, 1000 keys",
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average at the end " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%d cores (%s), %s/%s%s%s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, mem, load)
}

func javaVersion() string {
	out, _ := exec.Command("java", "-version").CombinedOutput()
	l := strings.SplitN(string(out), "\n", 2)[0]
	return strings.TrimSpace(l)
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f ms", float64(d)/1e6)
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	if a/b >= 10 {
		return fmt.Sprintf("%.0f×", a/b)
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *report) write(brokers string) {
	var b strings.Builder
	stamp := r.start.UTC().Format("2006-01-02-1504")
	mode := "default sizes"
	if *quick {
		mode = "-quick"
	}
	fmt.Fprintf(&b, "# kstreams vs Kafka Streams (and parallel-consumer), %s\n\n", r.start.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Generated by `cd tools && go run ./bench/ks %s` (%s; wall time %v including builds and broker start).\n\n",
		strings.Join(os.Args[1:], " "), mode, r.wall.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %s.\n", machine())
	fmt.Fprintf(&b, "- Broker: Apache Kafka 4.4.0 (KRaft, 1 node, tools/kafka/kafka.sh, heap 512m) on 127.0.0.1, same machine.\n")
	fmt.Fprintf(&b, "- kstreams: this commit, %s, separate process (tools/bench/ks/app), GOMAXPROCS=%d; stores: stores/pebble.\n", runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(&b, "- Kafka Streams 4.4.0 (org.apache.kafka:kafka-streams, RocksDB default stores), parallel-consumer 0.5.3.3 (io.confluent.parallelconsumer:parallel-consumer-core, kafka-clients 3.9.1), %s, `-Xmx1g`.\n", javaVersion())
	fmt.Fprintf(&b, "- Data: scenarios 1-3 read one topic of %d records (%d keys, %d-byte values, %d partitions, timestamps spread over 2 h); scenario 4 a topic of %d records over %d keys; every run starts a fresh application on the whole topic. Commit interval %v on both sides; Kafka Streams' record cache off (`statestore.cache.max.bytes=0`) so both emit one output per input (except the `-cache` row); Kafka Streams uses 1 stream thread (`kafka-streams-Nt`: N threads), %d in scenario 4 (one per partition); kstreams and parallel-consumer use concurrency %d in scenario 4.%s\n",
		*records, *keys, *valueSize, *partitions, *slowRecords, *slowKeys, *commitIvl, *partitions, *concurrency, variantNote())
	fmt.Fprintf(&b, "- Throughput = input records / (last − first output append time; first and last record of each output partition), start-up (process start to first output) apart. Latency: after the backlog, %d records/s (scenario 4: %d/s) for %v with the current time as timestamp; output topics use LogAppendTime; latency = append time − input timestamp. Peak RSS = VmHWM, CPU = utime+stime of the app process at the end of its run (start-up included).\n\n",
		*latRate, *latRate/10, *latDur)

	rows := r.rows()
	fmt.Fprintf(&b, "Each scenario ran %d time(s) per contender, the contenders' order rotating from round to round; figures are medians over the rounds, ± half the range (max − min) as a fraction of the median. Ratios are of medians. 1-minute load average before the runs: %.1f to %.1f.\n\n",
		*rounds, r.loadMin, r.loadMax)
	fmt.Fprintf(&b, "| scenario | implementation | records/s | vs Kafka Streams | start-up | p50 | p99 | peak RSS | RSS vs KS | CPU s |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cachedNote := false
	for _, rw := range rows {
		title := scenarioTitle[rw.scenario]
		impl := rw.impl
		if rw.cached {
			impl += " ¹"
			cachedNote = true
		}
		if rw.failed == rw.runs {
			fmt.Fprintf(&b, "| %s | %s | failed: %s | | | | | | | |\n", title, impl, strings.ReplaceAll(rw.errs[0], "|", "/"))
			continue
		}
		if rw.failed > 0 {
			impl += fmt.Sprintf(" (%d of %d runs failed: %s)", rw.failed, rw.runs, strings.ReplaceAll(rw.errs[0], "|", "/"))
		}
		vs, rss := "", ""
		if ks := findRow(rows, rw.scenario, "kafka-streams"); ks != nil && rw.impl != "kafka-streams" {
			vs = ratio(rw.rate.med, ks.rate.med)
			rss = ratio(rw.rssMiB.med, ks.rssMiB.med)
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s | %.2f s | %s | %s | %.0f MiB %s | %s | %.1f |\n", title, impl, thousands(rw.rate.med), rw.rate.spread(), vs,
			rw.startup.med, ms(time.Duration(rw.p50.med)), ms(time.Duration(rw.p99.med)), rw.rssMiB.med, rw.rssMiB.spread(), rss, rw.cpu.med)
	}
	if cachedNote {
		fmt.Fprintf(&b, "\n¹ Record cache on (10 MiB): updates of a key merge until a flush, so there are fewer outputs; the run ends when the committed offsets cover the input, and records/s = input records / (that time − first output), a commit interval's granularity.\n")
	}
	if k, pc := findRow(rows, "slow", "kstreams"), findRow(rows, "slow", "parallel-consumer"); k != nil && pc != nil {
		fmt.Fprintf(&b, "\nScenario 4, kstreams vs parallel-consumer: %s throughput, %s peak RSS.\n", ratio(k.rate.med, pc.rate.med), ratio(k.rssMiB.med, pc.rssMiB.med))
	}
	if *rounds > 1 {
		fmt.Fprintf(&b, "\n<details><summary>Every run</summary>\n\n| round | scenario | implementation | records/s | start-up | p50 | p99 | peak RSS | CPU s |\n|---:|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, res := range r.results {
			if res.err != "" {
				fmt.Fprintf(&b, "| %d | %s | %s | failed: %s | | | | | |\n", res.round+1, res.scenario, res.impl, strings.ReplaceAll(res.err, "|", "/"))
				continue
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %.2f s | %s | %s | %d MiB | %.1f |\n", res.round+1, res.scenario, res.impl, thousands(res.rate()),
				res.startup.Seconds(), ms(res.p50), ms(res.p99), res.rssKiB/1024, res.cpu)
		}
		fmt.Fprintf(&b, "\n</details>\n")
	}
	if len(r.recovery) > 0 {
		fmt.Fprintf(&b, "\n### 5. Recovery without local state\n\nCount by key over %d distinct keys (one record each), stop, delete the state directory, add one record per partition, restart: time from the process start to the first output and to the output of every partition (each task restores its store from the changelog first).\n\n", *recoveryKeys)
		fmt.Fprintf(&b, "| implementation | initial count | restart → first output | restart → all partitions | peak RSS (restart) | CPU s (restart) |\n|---|---:|---:|---:|---:|---:|\n")
		for _, rec := range r.recovery {
			if rec.err != "" {
				fmt.Fprintf(&b, "| %s | failed: %s | | | | |\n", rec.impl, rec.err)
				continue
			}
			fmt.Fprintf(&b, "| %s | %.2f s | %.2f s | %.2f s | %d MiB | %.1f |\n", rec.impl, rec.initial.Seconds(), rec.first.Seconds(), rec.all.Seconds(), rec.rssKiB/1024, rec.cpu)
		}
	}
	svgName := "ks-" + stamp + ".svg"
	fmt.Fprintf(&b, "\n![throughput and peak RSS](%s)\n", svgName)

	must(os.MkdirAll(*outDir, 0o755))
	mdPath := filepath.Join(*outDir, "ks-"+stamp+".md")
	must(os.WriteFile(mdPath, []byte(b.String()), 0o644))
	must(os.WriteFile(filepath.Join(*outDir, svgName), []byte(r.svg()), 0o644))
	fmt.Print(b.String())
	log.Printf("wrote %s and %s (wall time %v)", mdPath, svgName, r.wall.Round(time.Second))
}

func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

var implColor = map[string]string{"kstreams": "#1f77b4", "kafka-streams": "#ff7f0e", "parallel-consumer": "#2ca02c"}

// svg draws two panels of horizontal bars per scenario: throughput (log
// scale) and peak RSS (linear).
func (r *report) svg() string {
	var ok []row
	for _, rw := range r.rows() {
		if rw.runs > rw.failed {
			ok = append(ok, rw)
		}
	}
	const rowH, left, panelW, gap = 18, 460, 380, 40
	h := 70 + len(ok)*rowH + 10*len(scenarioTitle) + 40
	w := left + 2*panelW + gap + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">kstreams vs Kafka Streams / parallel-consumer, %s, 1 Kafka 4.4 broker</text>`+"\n", r.start.UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, `<text x="%d" y="45" font-weight="bold">throughput, records/s (log scale)</text>`+"\n", left)
	fmt.Fprintf(&b, `<text x="%d" y="45" font-weight="bold">peak RSS, MiB</text>`+"\n", left+panelW+gap)
	maxRate, maxRSS, minRate := 1.0, 1.0, math.MaxFloat64
	for _, res := range ok {
		maxRate = math.Max(maxRate, res.rate.med)
		minRate = math.Min(minRate, res.rate.med)
		maxRSS = math.Max(maxRSS, res.rssMiB.med)
	}
	lo := math.Pow(10, math.Floor(math.Log10(math.Max(minRate, 1))))
	hi := math.Pow(10, math.Ceil(math.Log10(maxRate)))
	if hi <= lo {
		hi = lo * 10
	}
	xr := func(v float64) float64 {
		return float64(panelW-60) * (math.Log10(math.Max(v, lo)) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
	}
	for d := lo; d <= hi*1.001; d *= 10 {
		x := float64(left) + xr(d)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="52" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`+"\n", x, x, h-30, x, h-18, thousands(d))
	}
	y := 60
	prev := ""
	for _, res := range ok {
		if res.scenario != prev {
			if prev != "" {
				y += 10
			}
			prev = res.scenario
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s — %s</text>`+"\n", left-6, y+13, scenarioTitle[res.scenario], res.impl)
		c, found := implColor[res.impl]
		if !found {
			c = "#7f7f7f"
			for prefix, pc := range implColor {
				if strings.HasPrefix(res.impl, prefix) {
					c = pc
				}
			}
		}
		bw := xr(res.rate.med)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/><text x="%.1f" y="%d" font-size="10">%s</text>`+"\n", left, y+2, bw, rowH-4, c, float64(left)+bw+3, y+13, thousands(res.rate.med))
		rw := float64(panelW-60) * res.rssMiB.med / maxRSS
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/><text x="%.1f" y="%d" font-size="10">%.0f</text>`+"\n", left+panelW+gap, y+2, rw, rowH-4, c, float64(left+panelW+gap)+rw+3, y+13, res.rssMiB.med)
		y += rowH
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// variantNote lists the extra kstreams rows' arguments.
func variantNote() string {
	var b strings.Builder
	for _, v := range variants {
		fmt.Fprintf(&b, " `%s`: tools/bench/ks/app `%s`.", v.name, strings.Join(v.args, " "))
	}
	return b.String()
}
