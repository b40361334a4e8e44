package svm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Rule is a working-set (direction) selection rule for Solve.
type Rule int

// Rules. The zero value is GS1.
const (
	// GS1 is steepest descent in the 1-norm (Ramesh et al. 2023): without
	// bounds the pair (argmax g, argmin g); with bounds the sort-based
	// direction that may move many coordinates.
	GS1 Rule = iota
	// GSS is the Gauss-Southwell-s rule, the maximal violating pair
	// (LIBSVM's first-order WSS1): argmax g over coordinates that can
	// decrease, argmin g over those that can increase.
	GSS
	// GSQ picks the pair maximising the bound-clipped decrease of the 1/L
	// quadratic model, in O(n log n) by a sweep over capacities.
	GSQ
	// WSS2 is LIBSVM's second-order working-set selection (Fan, Chen and Lin
	// 2005). It needs a Quadratic.
	WSS2
	// Random picks a uniformly random pair of distinct coordinates and moves
	// mass from the one with the larger gradient to the other.
	Random
)

var ruleNames = map[Rule]string{GS1: "gs1", GSS: "mvp", GSQ: "gsq", WSS2: "wss2", Random: "random"}

// String returns the rule's command-line name (gs1, mvp, gsq, wss2, random).
func (r Rule) String() string {
	if s, ok := ruleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("Rule(%d)", int(r))
}

// ParseRule parses a rule name: gs1, wss2, mvp (also gss, gs-s), gsq (gs-q), random.
func ParseRule(s string) (Rule, error) {
	switch strings.ToLower(s) {
	case "gs1", "gs-1":
		return GS1, nil
	case "mvp", "gss", "gs-s", "wss1":
		return GSS, nil
	case "gsq", "gs-q":
		return GSQ, nil
	case "wss2":
		return WSS2, nil
	case "random", "rand":
		return Random, nil
	}
	return 0, fmt.Errorf("svm: unknown rule %q (want gs1, wss2, mvp, gsq or random)", s)
}

// Step selects the step size.
type Step int

const (
	// FixedStep uses the step of the paper: the minimiser of the model
	// g.d + (L/2)||d||_1^2 (for a pair, delta = (g_i - g_j)/(4L)), clipped to
	// the bounds.
	FixedStep Step = iota
	// ExactStep minimises a quadratic exactly along the chosen direction
	// within the feasible segment (for a pair, (g_i - g_j)/(Q_ii + Q_jj - 2Q_ij)
	// clipped; for the multi-coordinate GS-1 direction, a line search on its
	// feasible range [0, 1]). It needs a Quadratic.
	ExactStep
)

// String returns "fixed" or "exact".
func (s Step) String() string {
	switch s {
	case FixedStep:
		return "fixed"
	case ExactStep:
		return "exact"
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// Quadratic is the matrix of a quadratic objective f(x) = 1/2 x'Qx + c'x
// with Q symmetric positive semi-definite.
type Quadratic interface {
	// Dim returns n.
	Dim() int
	// Diag returns Q_ii.
	Diag(i int) float64
	// AddColumn adds scale * Q[:, j] to dst (len n).
	AddColumn(dst []float64, j int, scale float64)
}

// Problem is min f(x) subject to sum(x) = Gamma and Lower <= x <= Upper.
// Give either Quad (with optional Linear c: f = 1/2 x'Qx + c'x) or Func and
// Grad. Nil Lower/Upper mean no bound on that side.
type Problem struct {
	// N is the dimension; 0 takes it from Quad, Lower or Upper.
	N int
	// Func returns f(x) (generic objective; used for the trace and result).
	Func func(x []float64) float64
	// Grad writes the gradient of f at x into grad.
	Grad func(grad, x []float64)
	// Quad and Linear define a quadratic objective; Func and Grad are then
	// not needed and the gradient is kept up to date with columns of Q.
	Quad   Quadratic
	Linear []float64
	// Lower and Upper are the bounds (nil: unbounded on that side).
	Lower, Upper []float64
	// Gamma is the value of sum(x).
	Gamma float64
	// L is the Lipschitz constant of the gradient from the 1-norm to the
	// max-norm; 0 with a Quadratic means max_i Q_ii.
	L float64
}

// Settings configure Solve; the zero value is usable (GS1, fixed steps,
// Tol 1e-6, MaxIter 1e6).
type Settings struct {
	Rule Rule
	Step Step
	// Tol stops when the maximal violation gap max_{x_i > l_i} g_i -
	// min_{x_j < u_j} g_j is <= Tol (0: 1e-6).
	Tol float64
	// MaxIter caps iterations (0: 1e6).
	MaxIter int
	// X0 is a feasible starting point (nil: one is constructed).
	X0 []float64
	// Trace records a TracePoint before the first and after every iteration.
	Trace bool
	// Seed seeds the Random rule.
	Seed uint64
	// Deadline stops the run (Status TimeLimit) after this much time (0: none).
	Deadline time.Duration
	// Callback, when set, is called before every iteration with the number
	// of iterations done and the current gap (for progress output).
	Callback func(iter int, gap float64)
}

// Status says why Solve stopped.
type Status int

// Statuses.
const (
	// Converged: the gap fell to Tol.
	Converged Status = iota
	// IterationLimit: MaxIter iterations were done.
	IterationLimit
	// TimeLimit: Settings.Deadline passed.
	TimeLimit
)

// String names the status.
func (s Status) String() string {
	switch s {
	case Converged:
		return "Converged"
	case IterationLimit:
		return "IterationLimit"
	case TimeLimit:
		return "TimeLimit"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Stats counts the work of a Solve run.
type Stats struct {
	Iterations int
	FuncEvals  int
	GradEvals  int
	// ColumnEvals counts columns of Q requested (a kernel column costs n
	// kernel evaluations unless cached; see KernelEvals).
	ColumnEvals int
	// KernelEvals is the number of kernel entries computed, when the
	// Quadratic reports it (see KernelCounter), else ColumnEvals*n.
	KernelEvals int64
	Runtime     time.Duration
}

// KernelCounter is optionally implemented by a Quadratic that caches
// columns: it reports the kernel entries actually computed so far.
type KernelCounter interface {
	KernelEvals() int64
}

// TracePoint is the state after Iter iterations.
type TracePoint struct {
	Iter        int
	F           float64
	Gap         float64
	ColumnEvals int
	GradEvals   int
	KernelEvals int64
	Time        time.Duration
}

// Result is the outcome of Solve.
type Result struct {
	X      []float64
	Grad   []float64
	F      float64
	Gap    float64
	Status Status
	Stats  Stats
	Trace  []TracePoint
}

// Solve minimises p under its constraints with the rule and step of s.
func Solve(p Problem, s *Settings) (*Result, error) {
	if s == nil {
		s = &Settings{}
	}
	t0 := time.Now()
	n := p.N
	if n == 0 {
		switch {
		case p.Quad != nil:
			n = p.Quad.Dim()
		case p.Lower != nil:
			n = len(p.Lower)
		case p.Upper != nil:
			n = len(p.Upper)
		case s.X0 != nil:
			n = len(s.X0)
		}
	}
	if n < 1 {
		return nil, errors.New("svm: Solve: dimension is 0")
	}
	if p.Quad != nil && p.Quad.Dim() != n {
		return nil, fmt.Errorf("svm: Solve: Quad.Dim() = %d, N = %d", p.Quad.Dim(), n)
	}
	if p.Quad == nil && p.Grad == nil {
		return nil, errors.New("svm: Solve: need Quad or Grad")
	}
	if p.Linear != nil && len(p.Linear) != n {
		return nil, fmt.Errorf("svm: Solve: len(Linear) = %d, want %d", len(p.Linear), n)
	}
	if (p.Lower != nil && len(p.Lower) != n) || (p.Upper != nil && len(p.Upper) != n) {
		return nil, fmt.Errorf("svm: Solve: bounds length mismatch (want %d)", n)
	}
	if s.Step == ExactStep && p.Quad == nil {
		return nil, errors.New("svm: Solve: exact steps need a Quadratic")
	}
	if s.Rule == WSS2 && p.Quad == nil {
		return nil, errors.New("svm: Solve: rule wss2 needs a Quadratic")
	}
	if _, ok := ruleNames[s.Rule]; !ok {
		return nil, fmt.Errorf("svm: Solve: unknown rule %d", int(s.Rule))
	}
	lower, upper := p.Lower, p.Upper
	if lower == nil {
		lower = fill(n, math.Inf(-1))
	}
	if upper == nil {
		upper = fill(n, math.Inf(1))
	}
	for i := 0; i < n; i++ {
		if !(lower[i] <= upper[i]) || math.IsInf(lower[i], 1) || math.IsInf(upper[i], -1) {
			return nil, fmt.Errorf("svm: Solve: bad bounds at %d: [%v, %v]", i, lower[i], upper[i])
		}
	}
	L := p.L
	if L == 0 && p.Quad != nil {
		for i := 0; i < n; i++ {
			L = math.Max(L, p.Quad.Diag(i))
		}
	}
	if !(L > 0) || math.IsInf(L, 0) {
		return nil, fmt.Errorf("svm: Solve: Lipschitz constant L = %v must be positive and finite", L)
	}
	tol := s.Tol
	if tol == 0 {
		tol = 1e-6
	}
	maxIter := s.MaxIter
	if maxIter == 0 {
		maxIter = 1000000
	}
	x := make([]float64, n)
	if s.X0 != nil {
		if len(s.X0) != n {
			return nil, fmt.Errorf("svm: Solve: len(X0) = %d, want %d", len(s.X0), n)
		}
		copy(x, s.X0)
		sum := 0.0
		for i, v := range x {
			if v < lower[i] || v > upper[i] || math.IsNaN(v) {
				return nil, fmt.Errorf("svm: Solve: X0[%d] = %v outside [%v, %v]", i, v, lower[i], upper[i])
			}
			sum += v
		}
		if math.Abs(sum-p.Gamma) > 1e-9*math.Max(1, math.Abs(p.Gamma)) {
			return nil, fmt.Errorf("svm: Solve: sum(X0) = %v, want Gamma = %v", sum, p.Gamma)
		}
	} else if err := feasiblePoint(x, lower, upper, p.Gamma); err != nil {
		return nil, err
	}

	sv := &solverState{p: &p, s: s, n: n, x: x, lower: lower, upper: upper, L: L,
		g: make([]float64, n), w: make([]float64, n), col: make([]float64, n)}
	if s.Rule == Random {
		sv.rng = rand.New(rand.NewPCG(s.Seed, 0x5851f42d4c957f2d))
	}
	res := &Result{}
	// Initial gradient.
	if p.Quad != nil {
		if p.Linear != nil {
			copy(sv.g, p.Linear)
		}
		for j, v := range x {
			if v != 0 {
				p.Quad.AddColumn(sv.g, j, v)
				res.Stats.ColumnEvals++
			}
		}
	} else {
		p.Grad(sv.g, x)
		res.Stats.GradEvals++
	}
	kc, _ := p.Quad.(KernelCounter)
	record := func(iter int) float64 {
		gap := sv.gap()
		if s.Trace {
			tp := TracePoint{Iter: iter, F: sv.objective(&res.Stats), Gap: gap,
				ColumnEvals: res.Stats.ColumnEvals, GradEvals: res.Stats.GradEvals, Time: time.Since(t0)}
			if kc != nil {
				tp.KernelEvals = kc.KernelEvals()
			} else {
				tp.KernelEvals = int64(res.Stats.ColumnEvals) * int64(n)
			}
			res.Trace = append(res.Trace, tp)
		}
		return gap
	}
	iter := 0
	var gap float64
	for {
		gap = record(iter)
		if gap <= tol || math.IsNaN(gap) {
			res.Status = Converged
			break
		}
		if iter >= maxIter {
			res.Status = IterationLimit
			break
		}
		if s.Deadline > 0 && time.Since(t0) > s.Deadline {
			res.Status = TimeLimit
			break
		}
		if s.Callback != nil {
			s.Callback(iter, gap)
		}
		if err := sv.iterate(&res.Stats); err != nil {
			return nil, err
		}
		iter++
	}
	res.Stats.Iterations = iter
	res.X = x
	res.Grad = sv.g
	res.Gap = gap
	res.F = sv.objective(&res.Stats)
	if kc != nil {
		res.Stats.KernelEvals = kc.KernelEvals()
	} else {
		res.Stats.KernelEvals = int64(res.Stats.ColumnEvals) * int64(n)
	}
	res.Stats.Runtime = time.Since(t0)
	return res, nil
}

func fill(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// feasiblePoint writes into x a point with sum(x) = gamma within the bounds.
func feasiblePoint(x, lower, upper []float64, gamma float64) error {
	n := len(x)
	sum := 0.0
	for i := range x {
		x[i] = math.Min(math.Max(gamma/float64(n), lower[i]), upper[i])
		sum += x[i]
	}
	r := gamma - sum
	for i := 0; i < n && r != 0; i++ {
		if r > 0 {
			c := math.Min(upper[i]-x[i], r)
			x[i] += c
			r -= c
		} else {
			c := math.Min(x[i]-lower[i], -r)
			x[i] -= c
			r += c
		}
	}
	if math.Abs(r) > 1e-12*math.Max(1, math.Abs(gamma)) {
		return fmt.Errorf("svm: Solve: infeasible: no point in the bounds sums to %v", gamma)
	}
	return nil
}

type solverState struct {
	p            *Problem
	s            *Settings
	n            int
	x, g         []float64
	lower, upper []float64
	L            float64
	w, col       []float64 // Q d and a column scratch
	rng          *rand.Rand
	// GS-1 scratch
	dIdx []int
	dVal []float64
	dHit []bool
	hd   idxHeap
	hu   idxHeap
	// GS-q scratch
	caps []capItem
}

func (sv *solverState) canDown(i int) bool { return sv.x[i] > sv.lower[i] }
func (sv *solverState) canUp(i int) bool   { return sv.x[i] < sv.upper[i] }

// gap returns max_{down} g - min_{up} g (0 when either set is empty).
func (sv *solverState) gap() float64 {
	gmax, gmin := math.Inf(-1), math.Inf(1)
	for i, gi := range sv.g {
		if gi > gmax && sv.x[i] > sv.lower[i] {
			gmax = gi
		}
		if gi < gmin && sv.x[i] < sv.upper[i] {
			gmin = gi
		}
	}
	if math.IsInf(gmax, -1) || math.IsInf(gmin, 1) {
		return 0
	}
	return math.Max(gmax-gmin, 0)
}

func (sv *solverState) objective(st *Stats) float64 {
	p := sv.p
	if p.Quad != nil {
		f := 0.0
		for i, xi := range sv.x {
			c := 0.0
			if p.Linear != nil {
				c = p.Linear[i]
			}
			f += xi * (sv.g[i] + c)
		}
		return f / 2
	}
	if p.Func == nil {
		return math.NaN()
	}
	st.FuncEvals++
	return p.Func(sv.x)
}

// iterate selects a direction by the rule, takes the step and updates g.
func (sv *solverState) iterate(st *Stats) error {
	var i, j int
	switch sv.s.Rule {
	case GS1:
		if !sv.bounded() {
			i, j = sv.argmaxDown(), sv.argminUp()
			return sv.pairStep(i, j, st)
		}
		sv.gs1Direction()
		return sv.directionStep(st)
	case GSS:
		i, j = sv.argmaxDown(), sv.argminUp()
	case GSQ:
		i, j = sv.gsqPair()
	case WSS2:
		return sv.wss2Step(st)
	case Random:
		a := sv.rng.IntN(sv.n)
		b := sv.rng.IntN(sv.n - 1)
		if b >= a {
			b++
		}
		if sv.g[a] < sv.g[b] {
			a, b = b, a
		}
		i, j = a, b
	}
	return sv.pairStep(i, j, st)
}

func (sv *solverState) bounded() bool { return sv.p.Lower != nil || sv.p.Upper != nil }

func (sv *solverState) argmaxDown() int {
	best, bi := math.Inf(-1), -1
	for k, gk := range sv.g {
		if gk > best && sv.x[k] > sv.lower[k] {
			best, bi = gk, k
		}
	}
	return bi
}

func (sv *solverState) argminUp() int {
	best, bj := math.Inf(1), -1
	for k, gk := range sv.g {
		if gk < best && sv.x[k] < sv.upper[k] {
			best, bj = gk, k
		}
	}
	return bj
}

// pairStep moves mass from i to j (x_i decreases, x_j increases).
func (sv *solverState) pairStep(i, j int, st *Stats) error {
	if i < 0 || j < 0 || i == j {
		return nil
	}
	delta := sv.g[i] - sv.g[j]
	if !(delta > 0) {
		return nil
	}
	capacity := math.Min(sv.x[i]-sv.lower[i], sv.upper[j]-sv.x[j])
	if !(capacity > 0) {
		return nil
	}
	p := sv.p
	var t float64
	if p.Quad != nil {
		for k := range sv.w {
			sv.w[k] = 0
		}
		p.Quad.AddColumn(sv.w, j, 1)
		p.Quad.AddColumn(sv.w, i, -1)
		st.ColumnEvals += 2
	}
	if sv.s.Step == ExactStep {
		curv := sv.w[j] - sv.w[i]
		if curv > 0 {
			t = math.Min(capacity, delta/curv)
		} else if !math.IsInf(capacity, 1) {
			t = capacity
		} else {
			return errors.New("svm: Solve: objective unbounded below along a pair direction")
		}
	} else {
		t = math.Min(capacity, delta/(4*sv.L))
	}
	if t == sv.x[i]-sv.lower[i] {
		sv.x[i] = sv.lower[i]
	} else {
		sv.x[i] -= t
	}
	if t == sv.upper[j]-sv.x[j] {
		sv.x[j] = sv.upper[j]
	} else {
		sv.x[j] += t
	}
	if p.Quad != nil {
		for k, wk := range sv.w {
			sv.g[k] += t * wk
		}
	} else {
		p.Grad(sv.g, sv.x)
		st.GradEvals++
	}
	return nil
}

// directionStep applies the sparse direction (dIdx, dVal): with fixed steps
// as is, with exact steps scaled by the exact minimiser on its feasible range.
func (sv *solverState) directionStep(st *Stats) error {
	if len(sv.dIdx) == 0 {
		return nil
	}
	p := sv.p
	if p.Quad != nil {
		for k := range sv.w {
			sv.w[k] = 0
		}
		for k, idx := range sv.dIdx {
			p.Quad.AddColumn(sv.w, idx, sv.dVal[k])
		}
		st.ColumnEvals += len(sv.dIdx)
	}
	t := 1.0
	if sv.s.Step == ExactStep {
		slope, curv := 0.0, 0.0
		tmax := math.Inf(1)
		for k, idx := range sv.dIdx {
			d := sv.dVal[k]
			slope += sv.g[idx] * d
			curv += sv.w[idx] * d
			var c float64
			if d > 0 {
				c = (sv.upper[idx] - sv.x[idx]) / d
			} else {
				c = (sv.x[idx] - sv.lower[idx]) / -d
			}
			tmax = math.Min(tmax, c)
		}
		if slope >= 0 {
			return nil
		}
		if curv > 0 {
			t = math.Min(tmax, -slope/curv)
		} else if !math.IsInf(tmax, 1) {
			t = tmax
		} else {
			return errors.New("svm: Solve: objective unbounded below along the GS-1 direction")
		}
	}
	for k, idx := range sv.dIdx {
		d := sv.dVal[k]
		nx := sv.x[idx] + t*d
		// Land exactly on a bound the direction was built to reach.
		if d > 0 && (nx >= sv.upper[idx] || (t == 1 && sv.dHit[k])) {
			nx = sv.upper[idx]
		} else if d < 0 && (nx <= sv.lower[idx] || (t == 1 && sv.dHit[k])) {
			nx = sv.lower[idx]
		}
		sv.x[idx] = nx
	}
	if p.Quad != nil {
		for k, wk := range sv.w {
			sv.g[k] += t * wk
		}
	} else {
		p.Grad(sv.g, sv.x)
		st.GradEvals++
	}
	return nil
}

// wss2Step is LIBSVM's WSS2 in x variables: j = argmin g over coordinates
// that can increase, then i among those that can decrease with g_i > g_j
// maximising (g_i - g_j)^2 / (Q_ii + Q_jj - 2 Q_ij).
func (sv *solverState) wss2Step(st *Stats) error {
	j := sv.argminUp()
	if j < 0 {
		return nil
	}
	q := sv.p.Quad
	for k := range sv.col {
		sv.col[k] = 0
	}
	q.AddColumn(sv.col, j, 1)
	st.ColumnEvals++
	qjj := q.Diag(j)
	gj := sv.g[j]
	best, bi := math.Inf(-1), -1
	for i, gi := range sv.g {
		if gi > gj && sv.x[i] > sv.lower[i] {
			d := gi - gj
			a := q.Diag(i) + qjj - 2*sv.col[i]
			if a <= 0 {
				a = tau
			}
			if v := d * d / a; v >= best {
				best, bi = v, i
			}
		}
	}
	if bi < 0 {
		return nil
	}
	st.ColumnEvals-- // pairStep recounts column j
	return sv.pairStep(bi, j, st)
}

type capItem struct {
	c    float64
	g    float64
	idx  int32
	down bool
}

// gsqPair returns the pair maximising the clipped decrease of the 1/L model,
// h(D, c) = D t - 2L t^2 with t = min(c, D/(4L)), D = g_i - g_j and c the
// smaller of the two capacities. Since h grows with D and with c, the best
// pair is found by sweeping capacities c in decreasing order and pairing the
// largest g among decreasable coordinates with capacity >= c with the smallest
// g among increasable ones with capacity >= c: O(n log n).
func (sv *solverState) gsqPair() (int, int) {
	if !sv.bounded() {
		return sv.argmaxDown(), sv.argminUp()
	}
	items := sv.caps[:0]
	for k := 0; k < sv.n; k++ {
		if c := sv.x[k] - sv.lower[k]; c > 0 {
			items = append(items, capItem{c: c, g: sv.g[k], idx: int32(k), down: true})
		}
		if c := sv.upper[k] - sv.x[k]; c > 0 {
			items = append(items, capItem{c: c, g: sv.g[k], idx: int32(k)})
		}
	}
	sv.caps = items
	sort.Slice(items, func(a, b int) bool { return items[a].c > items[b].c })
	gmax, gmin := math.Inf(-1), math.Inf(1)
	imax, imin := -1, -1
	bestV, bi, bj := 0.0, -1, -1
	L4 := 4 * sv.L
	for k := 0; k < len(items); {
		c := items[k].c
		for ; k < len(items) && items[k].c == c; k++ {
			it := items[k]
			if it.down {
				if it.g > gmax {
					gmax, imax = it.g, int(it.idx)
				}
			} else if it.g < gmin {
				gmin, imin = it.g, int(it.idx)
			}
		}
		if imax < 0 || imin < 0 || imax == imin {
			continue
		}
		D := gmax - gmin
		if D <= 0 {
			continue
		}
		t := math.Min(c, D/L4)
		if v := D*t - 2*sv.L*t*t; v > bestV {
			bestV, bi, bj = v, imax, imin
		}
	}
	return bi, bj
}

// DenseQuadratic is a Quadratic held as a dense symmetric n×n matrix in
// row-major order (Data[i*N+j] = Q_ij).
type DenseQuadratic struct {
	N    int
	Data []float64
}

// Dim returns N.
func (q *DenseQuadratic) Dim() int { return q.N }

// Diag returns Q_ii.
func (q *DenseQuadratic) Diag(i int) float64 { return q.Data[i*q.N+i] }

// AddColumn adds scale*Q[:, j] to dst (Q is symmetric, so row j is read).
func (q *DenseQuadratic) AddColumn(dst []float64, j int, scale float64) {
	row := q.Data[j*q.N : (j+1)*q.N]
	for k, v := range row {
		dst[k] += scale * v
	}
}
