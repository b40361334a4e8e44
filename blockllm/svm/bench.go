package svm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// CompareOptions configure RunComparison; zero values take the defaults.
type CompareOptions struct {
	// Files are LIBSVM data files whose C-SVC duals (LIBSVM's defaults:
	// C = 1, RBF kernel with gamma = 1/features) are compared; a missing
	// file is an error. Only binary problems are compared (the first
	// one-vs-one problem of a multi-class set).
	Files []string
	// MaxRows keeps the first rows of each set (0: all).
	MaxRows int
	// N is the dimension of the synthetic bound-constrained problem
	// (SyntheticBoundedProblem; default 1000, < 0: none).
	N int
	// Rules to compare (default GS1, GSS, GSQ, WSS2, Random).
	Rules []Rule
	// Steps to compare (default ExactStep and FixedStep).
	Steps []Step
	// Shrinking settings to compare (default on and off).
	Shrinking []bool
	// Eps is the stopping tolerance (default LIBSVM's 1e-3).
	Eps float64
	// MaxIter caps each run (0: LIBSVM's max(1e7, 100 l)); TimeLimit too
	// (default 60 s).
	MaxIter   int
	TimeLimit time.Duration
	// CacheMB is the kernel cache (default 100) and Threads the goroutines
	// computing kernel columns (default 1).
	CacheMB float64
	Threads int
	// Seed seeds the synthetic problem and the random rule (default 1).
	Seed uint64
	// Progress, when set, is called after each run.
	Progress func(problem string, r RuleRun)
	// CPUClock, when set, returns the process's CPU time; each run then
	// records the CPU time it used (RuleRun.CPU), which a shared machine
	// disturbs less than the wall time.
	CPUClock func() time.Duration
}

func (o *CompareOptions) defaults() {
	if o.N == 0 {
		o.N = 1000
	}
	if o.Rules == nil {
		o.Rules = []Rule{GS1, GSS, GSQ, WSS2, Random}
	}
	if o.Steps == nil {
		o.Steps = []Step{ExactStep, FixedStep}
	}
	if o.Shrinking == nil {
		o.Shrinking = []bool{true, false}
	}
	if o.Eps == 0 {
		o.Eps = 1e-3
	}
	if o.TimeLimit == 0 {
		o.TimeLimit = 60 * time.Second
	}
	if o.CacheMB == 0 {
		o.CacheMB = 100
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// RuleRun is one solver run of the rule comparison: the same LIBSVM solver
// (shrinking, gradient reconstruction, kernel cache) with one rule and step.
type RuleRun struct {
	Rule      Rule
	Step      Step
	Shrinking bool
	// Iterations, KernelEvals (kernel entries computed, after caching) and
	// Time (wall time, kernel set-up included) to reach the stopping
	// tolerance, or the limit (Status).
	Iterations  int
	KernelEvals int64
	Time        time.Duration
	// CPU is the process CPU time of the run (with CompareOptions.CPUClock).
	CPU    time.Duration
	Obj    float64
	Status Status
	// Trace is the objective along the run (at most 4096 points).
	Trace []TracePoint
}

// ComparisonProblem holds the runs of one problem.
type ComparisonProblem struct {
	Name string
	// Vars is the number of dual variables.
	Vars int
	// FStar is the reference optimum: the smallest objective of a WSS2 run
	// to a tolerance of 1e-6 and of all runs.
	FStar float64
	Runs  []RuleRun
}

// RunComparison runs every rule with every step and shrinking setting in
// the LIBSVM solver on a seeded synthetic bound-constrained problem and on
// the C-SVC duals of the data files, and returns the iterations, kernel
// evaluations, wall times and objective traces. Printing and plotting are
// left to the caller (cmd/bench's `bench svm`).
func RunComparison(opts CompareOptions) ([]*ComparisonProblem, error) {
	opts.defaults()
	type problem struct {
		name string
		vars int
		run  func(rule Rule, step Step, shrinking bool, eps float64, trace bool, deadline time.Duration) (RuleRun, error)
	}
	var probs []problem
	if opts.N > 0 {
		n := opts.N
		p := SyntheticBoundedProblem(n, opts.Seed)
		C := 5 / float64(n)
		probs = append(probs, problem{fmt.Sprintf("bounded n=%d", n), n,
			func(rule Rule, step Step, shrinking bool, eps float64, trace bool, deadline time.Duration) (RuleRun, error) {
				t0 := time.Now()
				si, evals := solveBoundedDense(p, C, rule, step, shrinking, eps, opts.MaxIter, deadline, trace, opts.Seed)
				return RuleRun{Rule: rule, Step: step, Shrinking: shrinking, Iterations: si.iterations, KernelEvals: evals,
					Time: time.Since(t0), Obj: si.obj, Status: si.status, Trace: si.trace}, nil
			}})
	}
	for _, file := range opts.Files {
		d, err := ReadDatasetFile(file)
		if err != nil {
			return nil, err
		}
		if opts.MaxRows > 0 && d.Len() > opts.MaxRows {
			d = &Dataset{Y: d.Y[:opts.MaxRows], X: d.X[:opts.MaxRows], MaxIndex: d.MaxIndex}
		}
		g := groupClasses(d.Y)
		if len(g.label) < 2 {
			return nil, fmt.Errorf("svm: %s: only one class", file)
		}
		if len(g.label) > 2 {
			// the first one-vs-one problem
			sub := &Dataset{MaxIndex: d.MaxIndex}
			for i, y := range d.Y {
				if int(y) == g.label[0] || int(y) == g.label[1] {
					sub.X = append(sub.X, d.X[i])
					sub.Y = append(sub.Y, y)
				}
			}
			d = sub
		}
		name := fmt.Sprintf("%s l=%d", baseName(file), d.Len())
		probs = append(probs, problem{name, d.Len(),
			func(rule Rule, step Step, shrinking bool, eps float64, trace bool, deadline time.Duration) (RuleRun, error) {
				p := DefaultParams(d.MaxIndex)
				p.Rule, p.FixedStep, p.Shrinking, p.Eps = rule, step == FixedStep, shrinking, eps
				p.Trace, p.Deadline, p.MaxIter = trace, deadline, opts.MaxIter
				p.CacheMB, p.Threads, p.Seed = opts.CacheMB, opts.Threads, int64(opts.Seed)
				t0 := time.Now()
				m, err := Train(d, p)
				if err != nil {
					return RuleRun{}, err
				}
				st := m.Stats[0]
				return RuleRun{Rule: rule, Step: step, Shrinking: shrinking, Iterations: st.Iterations, KernelEvals: st.KernelEvals,
					Time: time.Since(t0), Obj: st.Obj, Status: st.Status, Trace: st.Trace}, nil
			}})
	}
	if len(probs) == 0 {
		return nil, errors.New("svm: nothing to compare")
	}
	var out []*ComparisonProblem
	for _, pr := range probs {
		ref, err := pr.run(WSS2, ExactStep, true, 1e-6, false, 0)
		if err != nil {
			return nil, fmt.Errorf("svm: %s reference: %w", pr.name, err)
		}
		cp := &ComparisonProblem{Name: pr.name, Vars: pr.vars, FStar: ref.Obj}
		for _, step := range opts.Steps {
			for _, shrink := range opts.Shrinking {
				for _, rule := range opts.Rules {
					var c0 time.Duration
					if opts.CPUClock != nil {
						c0 = opts.CPUClock()
					}
					r, err := pr.run(rule, step, shrink, opts.Eps, true, opts.TimeLimit)
					if opts.CPUClock != nil {
						r.CPU = opts.CPUClock() - c0
					}
					if err != nil {
						return nil, fmt.Errorf("svm: %s %v %v: %w", pr.name, rule, step, err)
					}
					cp.FStar = math.Min(cp.FStar, r.Obj)
					cp.Runs = append(cp.Runs, r)
					if opts.Progress != nil {
						opts.Progress(pr.name, r)
					}
				}
			}
		}
		out = append(out, cp)
	}
	return out, nil
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' || path[i] == '\\' {
			return path[i+1:]
		}
	}
	return path
}

// solveBoundedDense runs the LIBSVM solver on min 1/2 x'Qx + c'x with
// sum(x) = Gamma and 0 <= x <= C (a Problem with a DenseQuadratic), from
// the feasible point of the general solver, and returns the kernel (here:
// matrix) entries read.
func solveBoundedDense(p Problem, C float64, rule Rule, step Step, shrinking bool, eps float64, maxIter int,
	deadline time.Duration, trace bool, seed uint64) (solutionInfo, int64) {
	q := p.Quad.(*DenseQuadratic)
	n := q.N
	y := make([]int8, n)
	for i := range y {
		y[i] = 1
	}
	Q := newDenseQ(q)
	s := &smoSolver{l: n, y: y, Q: Q, QD: Q.diag(), p: append([]float64(nil), p.Linear...), eps: eps,
		Cp: C, Cn: C, rule: rule, fixed: step == FixedStep, seed: seed, maxIter: maxIter, deadline: deadline, tracing: trace}
	a := make([]float64, n)
	if err := feasiblePoint(a, make([]float64, n), fill(n, C), p.Gamma); err != nil {
		panic(err) // SyntheticBoundedProblem is feasible by construction
	}
	si := s.solve(a, shrinking)
	return si, Q.kernelEvals()
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
