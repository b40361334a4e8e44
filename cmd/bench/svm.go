package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/blockllm/blockllm-go/blockllm/svm"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func init() { subcommands["svm"] = runSVM }

// svmBundledHeart is heart_scale as bundled in the repository (relative to
// its root, where `go run ./cmd/bench` runs).
const svmBundledHeart = "testdata/svm/heart_scale"

// runSVM is `bench svm`: the greedy 2-coordinate paper's comparison of
// working-set rules (GS-1, maximal violating pair, GS-q, WSS2, random pairs),
// each with exact and fixed 1/L steps, with and without shrinking, all inside
// the same LIBSVM solver, on a seeded bound-constrained problem, the bundled
// heart_scale and, with --data, the full LIBSVM data sets. It prints a table
// (iterations, kernel evaluations and wall time to reach LIBSVM's stopping
// tolerance) and writes the objective gap curves f - f* as PNGs.
func runSVM(args []string) error {
	return svmBench(args, os.Stdout)
}

func svmBench(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench svm", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var o svm.CompareOptions
	data := fs.String("data", "", "directory of LIBSVM data sets to add to the bundled heart_scale (e.g. a8a, w8a, a9a.t)")
	sets := fs.String("sets", "a8a,w8a,a9a.t", "comma-separated data sets in --data")
	heart := fs.Bool("heart", true, "include the bundled "+svmBundledHeart+" (run from the repository root)")
	rules := fs.String("rules", "gs1,mvp,gsq,wss2,random", "comma-separated working-set rules")
	steps := fs.String("steps", "exact,fixed", "comma-separated steps: exact, fixed")
	shrink := fs.String("shrinking", "on,off", "comma-separated shrinking settings: on, off")
	fs.IntVar(&o.MaxRows, "max-rows", 0, "keep the first rows of each set (0: all)")
	fs.IntVar(&o.N, "n", 1000, "dimension of the synthetic bounded problem (-1: none)")
	fs.IntVar(&o.MaxIter, "max-iter", 0, "iteration cap per run (0: LIBSVM's)")
	fs.DurationVar(&o.TimeLimit, "time-limit", 60*time.Second, "time cap per run")
	fs.IntVar(&o.Threads, "threads", 1, "goroutines computing kernel columns")
	fs.Float64Var(&o.CacheMB, "cache", 100, "kernel cache in MB")
	out := fs.String("out", ".", `directory for the PNG plots ("-": none)`)
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the synthetic problem and the random rule")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, r := range strings.Split(*rules, ",") {
		rule, err := svm.ParseRule(strings.TrimSpace(r))
		if err != nil {
			return err
		}
		o.Rules = append(o.Rules, rule)
	}
	for _, s := range strings.Split(*steps, ",") {
		switch strings.TrimSpace(s) {
		case "exact":
			o.Steps = append(o.Steps, svm.ExactStep)
		case "fixed":
			o.Steps = append(o.Steps, svm.FixedStep)
		default:
			return fmt.Errorf("--steps: want exact or fixed, got %q", s)
		}
	}
	for _, s := range strings.Split(*shrink, ",") {
		switch strings.TrimSpace(s) {
		case "on":
			o.Shrinking = append(o.Shrinking, true)
		case "off":
			o.Shrinking = append(o.Shrinking, false)
		default:
			return fmt.Errorf("--shrinking: want on or off, got %q", s)
		}
	}
	if *heart {
		if _, err := os.Stat(svmBundledHeart); err != nil {
			return fmt.Errorf("%s not found: run from the repository root, or pass --heart=false", svmBundledHeart)
		}
		o.Files = append(o.Files, svmBundledHeart)
	}
	if *data != "" {
		for _, s := range strings.Split(*sets, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.Files = append(o.Files, filepath.Join(*data, s))
			}
		}
	}
	if *out != "-" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
	}
	o.CPUClock = svmCPUTime
	o.Progress = func(p string, r svm.RuleRun) {
		fmt.Fprintf(stdout, "%s: %s %s shrinking=%v: %d iterations, %.2f s (CPU %.2f s), %s\n", p, r.Rule, r.Step, r.Shrinking,
			r.Iterations, r.Time.Seconds(), r.CPU.Seconds(), r.Status)
	}
	res, err := svm.RunComparison(o)
	if err != nil {
		return err
	}
	if err := svmTable(stdout, res); err != nil {
		return err
	}
	if *out == "-" {
		return nil
	}
	for _, p := range res {
		for _, step := range o.Steps {
			for _, sh := range o.Shrinking {
				name, err := svmPlot(*out, p, step, sh)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "wrote %s\n", name)
			}
		}
	}
	return nil
}

// svmTable prints one row per run: the iterations, kernel evaluations and
// wall time to reach the stopping tolerance, and the final f - f*.
func svmTable(w io.Writer, res []*svm.ComparisonProblem) error {
	table := tablewriter.NewTable(w, tablewriter.WithConfig(
		tablewriter.NewConfigBuilder().WithHeaderAutoFormat(tw.Off).Build()))
	table.Header("problem", "step", "shrinking", "rule", "iterations", "kernel evals", "wall", "CPU", "f - f*")
	for _, p := range res {
		for _, r := range p.Runs {
			it := fmt.Sprint(r.Iterations)
			if r.Status != svm.Converged {
				it += " (" + r.Status.String() + ")"
			}
			sh := "off"
			if r.Shrinking {
				sh = "on"
			}
			if err := table.Append([]string{p.Name, r.Step.String(), sh, r.Rule.String(), it, svmHuman(float64(r.KernelEvals)),
				fmt.Sprintf("%.3g s", r.Time.Seconds()), fmt.Sprintf("%.3g s", r.CPU.Seconds()), fmt.Sprintf("%.2e", r.Obj-p.FStar)}); err != nil {
				return fmt.Errorf("table: %w", err)
			}
		}
	}
	if err := table.Render(); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return nil
}

var svmPalette = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

// svmPlot writes f - f* against iterations, one line per rule, for one
// problem, step and shrinking setting, and returns the file name.
func svmPlot(dir string, p *svm.ComparisonProblem, step svm.Step, shrinking bool) (string, error) {
	sh := "shrink"
	if !shrinking {
		sh = "noshrink"
	}
	pl := plot.New()
	pl.Title.Text = fmt.Sprintf("%s, %s steps, shrinking %v", p.Name, step, shrinking)
	pl.X.Label.Text = "iteration"
	pl.Y.Label.Text = "f(x) - f*"
	pl.Y.Scale = plot.LogScale{}
	pl.Y.Tick.Marker = plot.LogTicks{Prec: 1}
	pl.Legend.Top = true
	floor := 1e-12 * math.Max(1, math.Abs(p.FStar))
	// Show the greedy rules' range: random pairs take far longer and would
	// squeeze them against the axis.
	xmax := 0
	for _, r := range p.Runs {
		if r.Step == step && r.Shrinking == shrinking && r.Rule != svm.Random && len(r.Trace) > 0 {
			xmax = max(xmax, r.Trace[len(r.Trace)-1].Iter)
		}
	}
	if xmax > 0 {
		pl.X.Min, pl.X.Max = 0, float64(xmax)*1.5
	}
	k := 0
	for _, r := range p.Runs {
		if r.Step != step || r.Shrinking != shrinking {
			continue
		}
		pts := make(plotter.XYs, 0, len(r.Trace))
		for _, tp := range r.Trace {
			if xmax > 0 && float64(tp.Iter) > pl.X.Max {
				break
			}
			pts = append(pts, plotter.XY{X: float64(tp.Iter), Y: math.Max(tp.F-p.FStar, floor)})
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return "", fmt.Errorf("plot: %w", err)
		}
		l.Color = svmPalette[k%len(svmPalette)]
		l.Width = vg.Points(1.5)
		k++
		pl.Add(l)
		pl.Legend.Add(r.Rule.String(), l)
	}
	if k == 0 {
		return "", errors.New("plot: no runs")
	}
	name := filepath.Join(dir, fmt.Sprintf("svm-compare-%s-%s-%s.png", svmSlug(p.Name), step, sh))
	if err := pl.Save(7*vg.Inch, 4.5*vg.Inch, name); err != nil {
		return "", fmt.Errorf("plot: %w", err)
	}
	return name, nil
}

// svmCPUTime returns the process's user and system CPU time.
func svmCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func svmHuman(v float64) string {
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

func svmSlug(s string) string {
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
