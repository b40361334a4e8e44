package cli

import (
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/eval/report"
)

// Variant is one BlockLLM variant of an ablation: a preset and switches, written as
// "reference" or "default --penalty exp-freq --budget under".
type Variant struct {
	Name string
	Sel  Selection
}

// OneSwitchVariants is what --ablate all runs: both presets, each switch of the
// reference preset alone on top of the default one, and the reference preset with the
// default's first block. %d is the reference preset's check interval.
const OneSwitchVariants = "default; reference; reference --first-block norm; default --penalty exp-freq; default --trigger gt --check-every %d; " +
	"default --budget under; default --first-block random; default --exclude embed,lm_head --heads eligible"

// ParseVariants parses --ablate: variants separated by ";" (or "all", see
// OneSwitchVariants, with refCheck as the reference check interval).
func ParseVariants(spec string, refCheck int) ([]Variant, error) {
	if strings.TrimSpace(spec) == "all" {
		spec = fmt.Sprintf(OneSwitchVariants, refCheck)
	}
	var out []Variant
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ";") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		v := Variant{Name: strings.Join(f, " ")}
		fs := flag.NewFlagSet("variant", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v.Sel.Register(fs)
		if strings.HasPrefix(f[0], "-") {
			return nil, fmt.Errorf("--ablate variant %q: start with a preset (%s)", v.Name, strings.Join(blockllm.Presets, " or "))
		}
		if err := fs.Parse(append([]string{"--blockllm-preset", f[0]}, f[1:]...)); err != nil {
			return nil, fmt.Errorf("--ablate variant %q: %w", v.Name, err)
		}
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("--ablate variant %q: unexpected %q", v.Name, fs.Arg(0))
		}
		v.Sel.Parsed(fs)
		if seen[v.Name] {
			return nil, fmt.Errorf("--ablate: variant %q listed twice", v.Name)
		}
		seen[v.Name] = true
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--ablate: no variant")
	}
	return out, nil
}

// ParseSeeds parses --seeds: a count n (seeds base, base+1, ..., base+n-1) or a comma
// list of seeds.
func ParseSeeds(s string, base uint64) ([]uint64, error) {
	var out []uint64
	if !strings.Contains(s, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			return nil, fmt.Errorf("--seeds %q: want a count of at least 1 or a comma list of seeds", s)
		}
		for i := 0; i < n; i++ {
			out = append(out, base+uint64(i))
		}
		return out, nil
	}
	for _, f := range SplitList(s) {
		var v uint64
		if _, err := fmt.Sscan(f, &v); err != nil {
			return nil, fmt.Errorf("--seeds: %q is not a seed", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// AblationRun is one (variant, seed) run's outcome.
type AblationRun struct {
	Variant    string
	Seed       uint64
	Metric     float64 // final metric (validation perplexity, GLUE score)
	Loss       float64 // final validation loss (NaN: not measured)
	Selections int
	OptBytes   int64
	PeakBytes  int64
	Elapsed    time.Duration
	// Curve is the metric at each evaluation (X: step).
	Curve report.Curve
}

// Summarize aggregates runs per variant, in the order the variants first appear.
func Summarize(runs []AblationRun) []report.AblationRow {
	var order []string
	by := map[string][]AblationRun{}
	for _, r := range runs {
		if _, ok := by[r.Variant]; !ok {
			order = append(order, r.Variant)
		}
		by[r.Variant] = append(by[r.Variant], r)
	}
	var rows []report.AblationRow
	for _, v := range order {
		rs := by[v]
		var m, l, sel []float64
		row := report.AblationRow{Variant: v, Seeds: len(rs)}
		var el time.Duration
		for _, r := range rs {
			m, l, sel = append(m, r.Metric), append(l, r.Loss), append(sel, float64(r.Selections))
			row.OptimizerBytes = max(row.OptimizerBytes, r.OptBytes)
			row.PeakBytes = max(row.PeakBytes, r.PeakBytes)
			el += r.Elapsed
		}
		row.Metric, row.MetricSD = meanSD(m)
		row.Loss, row.LossSD = meanSD(l)
		row.Selections, _ = meanSD(sel)
		row.Elapsed = el / time.Duration(len(rs))
		rows = append(rows, row)
	}
	return rows
}

// meanSD is the mean and the sample standard deviation (0 for one value).
func meanSD(xs []float64) (float64, float64) {
	var s float64
	for _, x := range xs {
		s += x
	}
	m := s / float64(len(xs))
	if len(xs) < 2 {
		return m, 0
	}
	var q float64
	for _, x := range xs {
		q += (x - m) * (x - m)
	}
	return m, math.Sqrt(q / float64(len(xs)-1))
}

// Verdict compares every variant with the first (the baseline) in units of their pooled
// standard deviation over seeds, best first: lowerBetter for perplexity, not for scores.
func Verdict(rows []report.AblationRow, metric string, lowerBetter bool) string {
	if len(rows) < 2 {
		return ""
	}
	base := rows[0]
	type cmp struct {
		name  string
		diff  float64
		units float64
		seeds int
	}
	var cs []cmp
	for _, r := range rows[1:] {
		d := r.Metric - base.Metric
		if lowerBetter {
			d = -d
		}
		pooled := math.Sqrt((r.MetricSD*r.MetricSD + base.MetricSD*base.MetricSD) / 2)
		var u float64 // d == 0: no difference at all
		switch {
		case pooled > 0:
			u = d / pooled
		case d > 0:
			u = math.Inf(1)
		case d < 0:
			u = math.Inf(-1)
		}
		cs = append(cs, cmp{r.Variant, d, u, min(r.Seeds, base.Seeds)})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].diff > cs[j].diff })
	var b strings.Builder
	fmt.Fprintf(&b, "Against %q (%s %.2f ± %.2f), better is positive:\n", base.Variant, metric, base.Metric, base.MetricSD)
	for _, c := range cs {
		verdict := "within the seed spread"
		switch {
		case c.diff == 0:
			verdict = "the same result"
		case c.seeds < 2:
			verdict = "one seed: no spread to judge by (use --seeds 3 or more)"
		case math.IsInf(c.units, 0):
			verdict = "every seed gave the same result: no spread to judge by (the seed changes nothing here)"
		case c.units >= 2:
			verdict = "better beyond the seed spread"
		case c.units <= -2:
			verdict = "worse beyond the seed spread"
		}
		fmt.Fprintf(&b, "  %-60s %+8.2f (%+.1f pooled sd): %s\n", c.name, c.diff, c.units, verdict)
	}
	return b.String()
}
