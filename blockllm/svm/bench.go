package svm

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// CompareOptions configure RunComparison; zero values take the defaults.
type CompareOptions struct {
	// DataDir holds LIBSVM data sets (default ../shared/data/svm).
	DataDir string
	// Sets are the data sets whose SVM duals are compared (default
	// heart_scale and a8a); a missing file is skipped with a message.
	Sets []string
	// MaxRows keeps the first rows of each set (default 5000; < 0: all).
	MaxRows int
	// N is the dimension of the synthetic problems (default 1000).
	N int
	// Rules to compare (default GS1, GSS, GSQ, WSS2, Random).
	Rules []Rule
	// Steps to compare (default FixedStep and ExactStep).
	Steps []Step
	// Gaps at which iterations and kernel evaluations are reported
	// (default 1e-1 ... 1e-6).
	Gaps []float64
	// MaxIter caps each run (default 20000); TimeLimit too (default 10 s).
	MaxIter   int
	TimeLimit time.Duration
	// CacheMB is the kernel cache for SVM duals (default 100).
	CacheMB float64
	// OutDir receives one PNG per problem and step (default "."); "-" writes none.
	OutDir string
	// Seed seeds the synthetic problems and the random rule (default 1).
	Seed uint64
}

func (o *CompareOptions) defaults() {
	if o.DataDir == "" {
		o.DataDir = "../shared/data/svm"
	}
	if o.Sets == nil {
		o.Sets = []string{"heart_scale", "a8a"}
	}
	if o.MaxRows == 0 {
		o.MaxRows = 5000
	}
	if o.N == 0 {
		o.N = 1000
	}
	if o.Rules == nil {
		o.Rules = []Rule{GS1, GSS, GSQ, WSS2, Random}
	}
	if o.Steps == nil {
		o.Steps = []Step{FixedStep, ExactStep}
	}
	if o.Gaps == nil {
		o.Gaps = []float64{1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6}
	}
	if o.MaxIter == 0 {
		o.MaxIter = 20000
	}
	if o.TimeLimit == 0 {
		o.TimeLimit = 10 * time.Second
	}
	if o.CacheMB == 0 {
		o.CacheMB = 100
	}
	if o.OutDir == "" {
		o.OutDir = "."
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// compareProblem builds a fresh problem for each run (so kernel caches start
// cold) and releases it.
type compareProblem struct {
	name  string
	build func() (Problem, func(), error)
}

// SyntheticSumProblem returns a seeded ill-conditioned convex quadratic in n
// variables with only the summation constraint sum(x) = 1:
// Q = D + A'A/m with D diagonal, log-uniform in [1, 10], A an m×n
// (m = 20) Gaussian matrix, and c Gaussian.
func SyntheticSumProblem(n int, seed uint64) Problem {
	r := rand.New(rand.NewPCG(seed, 77))
	m := 20
	A := make([]float64, m*n)
	for i := range A {
		A[i] = r.NormFloat64()
	}
	Q := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			s := 0.0
			for k := 0; k < m; k++ {
				s += A[k*n+i] * A[k*n+j]
			}
			s /= float64(m)
			Q[i*n+j], Q[j*n+i] = s, s
		}
		Q[i*n+i] += math.Pow(10, r.Float64())
	}
	c := make([]float64, n)
	for i := range c {
		c[i] = r.NormFloat64()
	}
	return Problem{Quad: &DenseQuadratic{N: n, Data: Q}, Linear: c, Gamma: 1}
}

// SyntheticBoundedProblem is SyntheticSumProblem with bounds 0 <= x <= 5/n
// (so at least a fifth of the coordinates are non-zero at the solution).
func SyntheticBoundedProblem(n int, seed uint64) Problem {
	p := SyntheticSumProblem(n, seed)
	p.Lower = make([]float64, n)
	p.Upper = fill(n, 5/float64(n))
	return p
}

// RunComparison runs every rule with fixed and exact steps on a seeded
// synthetic problem with only the summation constraint, a bound-constrained
// one and the SVM duals (C = 1, RBF, gamma = 1/features) of the data sets,
// prints a table (iterations and kernel evaluations to reach each gap, time,
// final f - f*) and writes a PNG of f(x) - f* against iterations per problem
// and step, one line per rule.
func RunComparison(w io.Writer, opts CompareOptions) error {
	opts.defaults()
	var probs []compareProblem
	n, seed := opts.N, opts.Seed
	probs = append(probs,
		compareProblem{fmt.Sprintf("sum-only n=%d", n), func() (Problem, func(), error) {
			return SyntheticSumProblem(n, seed), func() {}, nil
		}},
		compareProblem{fmt.Sprintf("bounded n=%d", n), func() (Problem, func(), error) {
			return SyntheticBoundedProblem(n, seed), func() {}, nil
		}})
	for _, set := range opts.Sets {
		path := filepath.Join(opts.DataDir, set)
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(w, "skipping %s: %v\n", set, err)
			continue
		}
		d, err := ReadDatasetFile(path)
		if err != nil {
			return err
		}
		if opts.MaxRows > 0 && d.Len() > opts.MaxRows {
			d = &Dataset{Y: d.Y[:opts.MaxRows], X: d.X[:opts.MaxRows], MaxIndex: d.MaxIndex}
		}
		k := Kernel{Type: RBF, Degree: 3, Gamma: 1 / float64(max(d.MaxIndex, 1))}
		cache := opts.CacheMB
		probs = append(probs, compareProblem{fmt.Sprintf("svm %s l=%d", set, d.Len()), func() (Problem, func(), error) {
			dual, err := NewSVMDual(d, k, 1, 1, cache, 1)
			if err != nil {
				return Problem{}, nil, err
			}
			return dual.Problem, dual.Close, nil
		}})
	}
	header := []string{"problem", "step", "rule"}
	for _, g := range opts.Gaps {
		header = append(header, fmt.Sprintf("gap %.0e: iter / kernel", g))
	}
	header = append(header, "iters", "time", "f - f*")
	table := tablewriter.NewTable(w, tablewriter.WithConfig(
		tablewriter.NewConfigBuilder().WithHeaderAutoFormat(tw.Off).Build()))
	table.Header(toAny(header)...)
	for _, cp := range probs {
		// Reference optimum: exact-step WSS2 to a tight tolerance.
		p, done, err := cp.build()
		if err != nil {
			return err
		}
		ref, err := Solve(p, &Settings{Rule: WSS2, Step: ExactStep, Tol: 1e-9, MaxIter: 50 * opts.MaxIter, Deadline: 6 * opts.TimeLimit})
		done()
		if err != nil {
			return fmt.Errorf("svm: %s reference: %w", cp.name, err)
		}
		fstar := ref.F
		for _, step := range opts.Steps {
			type line struct {
				rule  Rule
				trace []TracePoint
			}
			var lines []line
			for _, rule := range opts.Rules {
				p, done, err := cp.build()
				if err != nil {
					return err
				}
				res, err := Solve(p, &Settings{Rule: rule, Step: step, Tol: opts.Gaps[len(opts.Gaps)-1],
					MaxIter: opts.MaxIter, Deadline: opts.TimeLimit, Trace: true, Seed: seed})
				done()
				if err != nil {
					return fmt.Errorf("svm: %s %v %v: %w", cp.name, rule, step, err)
				}
				fstar = math.Min(fstar, res.F)
				lines = append(lines, line{rule, res.Trace})
				row := []string{cp.name, step.String(), rule.String()}
				for _, g := range opts.Gaps {
					cell := "-"
					for _, tp := range res.Trace {
						if tp.Gap <= g {
							cell = fmt.Sprintf("%d / %s", tp.Iter, human(float64(tp.KernelEvals)))
							break
						}
					}
					row = append(row, cell)
				}
				status := ""
				if res.Status != Converged {
					status = " (" + res.Status.String() + ")"
				}
				row = append(row, fmt.Sprintf("%d%s", res.Stats.Iterations, status),
					fmt.Sprintf("%.3gs", res.Stats.Runtime.Seconds()),
					fmt.Sprintf("%.2e", res.F-ref.F))
				if err := table.Append(row); err != nil {
					return fmt.Errorf("svm: table: %w", err)
				}
			}
			if opts.OutDir != "-" {
				pl := plot.New()
				pl.Title.Text = fmt.Sprintf("%s, %s steps", cp.name, step)
				pl.X.Label.Text = "iteration"
				pl.Y.Label.Text = "f(x) - f*"
				pl.Y.Scale = plot.LogScale{}
				pl.Y.Tick.Marker = plot.LogTicks{Prec: 1}
				pl.Legend.Top = true
				// Show the greedy rules' range (random pairs are far slower and
				// would squeeze them against the axis).
				xmax := 0
				for _, ln := range lines {
					if ln.rule != Random && len(ln.trace) > 0 {
						xmax = max(xmax, ln.trace[len(ln.trace)-1].Iter)
					}
				}
				if xmax > 0 {
					pl.X.Min, pl.X.Max = 0, float64(xmax)*1.5
				}
				for li, ln := range lines {
					pts := make(plotter.XYs, 0, len(ln.trace))
					stride := max(1, len(ln.trace)/2000)
					for k := 0; k < len(ln.trace); k += stride {
						tp := ln.trace[k]
						if xmax > 0 && float64(tp.Iter) > pl.X.Max {
							break
						}
						pts = append(pts, plotter.XY{X: float64(tp.Iter), Y: math.Max(tp.F-fstar, 1e-14*math.Max(1, math.Abs(fstar)))})
					}
					l, err := plotter.NewLine(pts)
					if err != nil {
						return fmt.Errorf("svm: plot: %w", err)
					}
					l.Color = palette[li%len(palette)]
					l.Width = vg.Points(1.5)
					pl.Add(l)
					pl.Legend.Add(ln.rule.String(), l)
				}
				name := fmt.Sprintf("svm-compare-%s-%s.png", slug(cp.name), step)
				if err := pl.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(opts.OutDir, name)); err != nil {
					return fmt.Errorf("svm: plot: %w", err)
				}
				fmt.Fprintf(w, "wrote %s\n", filepath.Join(opts.OutDir, name))
			}
		}
	}
	if err := table.Render(); err != nil {
		return fmt.Errorf("svm: table: %w", err)
	}
	if len(probs) == 0 {
		return errors.New("svm: nothing to compare")
	}
	return nil
}

var palette = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	return b.String()
}
