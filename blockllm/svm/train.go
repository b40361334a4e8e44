package svm

import (
	"fmt"
	"io"
	"math"
	"time"
)

// SVMType is the problem type, numbered as in LIBSVM's -s flag.
type SVMType int

// Problem types (LIBSVM's numbering).
const (
	CSVC       SVMType = 0 // C-SVC: multi-class classification with cost C
	NuSVC      SVMType = 1 // nu-SVC: multi-class classification with nu
	OneClass   SVMType = 2 // one-class SVM (distribution support) with nu
	EpsilonSVR SVMType = 3 // epsilon-SVR: regression with cost C and tube P
	NuSVR      SVMType = 4 // nu-SVR: regression with cost C and nu
)

var svmTypeNames = []string{"c_svc", "nu_svc", "one_class", "epsilon_svr", "nu_svr"}

// String returns LIBSVM's name for the type (c_svc, nu_svc, one_class, epsilon_svr, nu_svr).
func (t SVMType) String() string {
	if t >= 0 && int(t) < len(svmTypeNames) {
		return svmTypeNames[t]
	}
	return fmt.Sprintf("SVMType(%d)", int(t))
}

// Classification reports whether the type predicts class labels (C-SVC, nu-SVC).
func (t SVMType) Classification() bool { return t == CSVC || t == NuSVC }

// Regression reports whether the type predicts real values (epsilon-SVR, nu-SVR).
func (t SVMType) Regression() bool { return t == EpsilonSVR || t == NuSVR }

// Params are the training parameters, named after LIBSVM's flags. The zero
// value is not LIBSVM's default; start from DefaultParams.
type Params struct {
	// Type is the problem type (-s).
	Type   SVMType
	Kernel Kernel
	// C is the cost (-c) of C-SVC, epsilon-SVR and nu-SVR. Must be > 0.
	C float64
	// Nu (-n) of nu-SVC, one-class SVM and nu-SVR, in (0, 1].
	Nu float64
	// P is epsilon-SVR's tube width (-p), >= 0.
	P float64
	// Eps is the stopping tolerance on the maximal violation gap (-e).
	Eps float64
	// CacheMB is the kernel-cache size in MB (-m).
	CacheMB float64
	// Shrinking enables LIBSVM's shrinking heuristic (-h).
	Shrinking bool
	// Probability trains probability estimates (-b): Platt scaling for
	// classification, the Laplace sigma for regression.
	Probability bool
	// Weights multiplies C for the class with the given label (-wi, C-SVC).
	Weights map[int]float64
	// Rule is the working-set rule of the solver: WSS2 (LIBSVM's, the
	// default), GSS (maximal violating pair), GSQ, Random or GS1. Every rule
	// runs inside the same LIBSVM solver, with shrinking, gradient
	// reconstruction, the kernel cache and threads.
	Rule Rule
	// FixedStep takes the fixed 1/L step of the greedy 2-coordinate paper
	// (the minimiser of g.d + (L/2)||d||_1^2, clipped) instead of LIBSVM's
	// exact step.
	FixedStep bool
	// Threads computes kernel columns (and, on large active sets, the
	// selection scans and gradient updates) on this many goroutines (<= 1: one).
	Threads int
	// MaxIter caps iterations per solver run (0: LIBSVM's max(1e7, 100 l)).
	MaxIter int
	// Deadline stops each solver run after this long (0: none); the model
	// is then the one at that point (BinaryStats.Status says so).
	Deadline time.Duration
	// Trace records the objective, the violation on the active set and the
	// kernel evaluations along each solver run (BinaryStats.Trace).
	Trace bool
	// Seed is the srand seed of the C rand() stream that draws the folds of
	// cross-validation and probability estimates (1, LIBSVM's, by default:
	// then the folds are LIBSVM's), and seeds the Random rule.
	Seed int64
	// Progress receives LIBSVM's progress and summary lines ("optimization
	// finished, #iter = N", "obj = .., rho = ..", "nSV = .., nBSV = ..");
	// nil is quiet.
	Progress io.Writer
	// Warnings receives the warnings LIBSVM prints on standard error
	// (reaching the iteration limit, unknown weight labels, more folds than
	// rows); nil sends them to Progress.
	Warnings io.Writer
}

// DefaultParams returns LIBSVM's defaults for n features: C-SVC, RBF kernel
// with gamma = 1/n (1 when n is 0), degree 3, coef0 0, C = 1, nu = 0.5,
// p = 0.1, eps = 1e-3, 100 MB cache, shrinking on, rule WSS2 with exact
// steps, one thread, seed 1.
func DefaultParams(numFeatures int) *Params {
	g := 1.0
	if numFeatures > 0 {
		g = 1 / float64(numFeatures)
	}
	return &Params{
		Kernel:    Kernel{Type: RBF, Degree: 3, Gamma: g},
		C:         1,
		Nu:        0.5,
		P:         0.1,
		Eps:       1e-3,
		CacheMB:   100,
		Shrinking: true,
		Rule:      WSS2,
		Threads:   1,
		Seed:      1,
	}
}

// validate is LIBSVM's svm_check_parameter (same checks, order and
// messages) plus the rule.
func (p *Params) validate(d *Dataset) error {
	if p.Type < CSVC || p.Type > NuSVR {
		return fmt.Errorf("svm: unknown svm type")
	}
	if p.Kernel.Type < Linear || p.Kernel.Type > Precomputed {
		return fmt.Errorf("svm: unknown kernel type")
	}
	if err := p.Kernel.validate(); err != nil {
		return err
	}
	if !(p.CacheMB > 0) {
		return fmt.Errorf("svm: cache_size <= 0")
	}
	if !(p.Eps > 0) {
		return fmt.Errorf("svm: eps <= 0")
	}
	if (p.Type == CSVC || p.Type == EpsilonSVR || p.Type == NuSVR) && !(p.C > 0) {
		return fmt.Errorf("svm: C <= 0")
	}
	if (p.Type == NuSVC || p.Type == OneClass || p.Type == NuSVR) && !(p.Nu > 0 && p.Nu <= 1) {
		return fmt.Errorf("svm: nu <= 0 or nu > 1")
	}
	if p.Type == EpsilonSVR && !(p.P >= 0) {
		return fmt.Errorf("svm: p < 0")
	}
	if p.Probability && p.Type == OneClass {
		return fmt.Errorf("svm: one-class SVM probability output not supported yet")
	}
	for lab, w := range p.Weights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("svm: weight for label %d must be finite and >= 0, got %v", lab, w)
		}
	}
	if _, ok := ruleNames[p.Rule]; !ok {
		return fmt.Errorf("svm: unknown rule %d", int(p.Rule))
	}
	for i, y := range d.Y {
		if !isFinite(y) {
			return fmt.Errorf("svm: row %d: label %v is not finite", i+1, y)
		}
		if p.Type.Classification() && (y != math.Trunc(y) || math.Abs(y) > math.MaxInt32) {
			return fmt.Errorf("svm: row %d: label %v is not an integer (%s needs class labels)", i+1, y, p.Type)
		}
	}
	if p.Type == NuSVC {
		g := groupClasses(d.Y)
		for i := range g.label {
			for j := i + 1; j < len(g.label); j++ {
				n1, n2 := g.count[i], g.count[j]
				if p.Nu*float64(n1+n2)/2 > float64(min(n1, n2)) {
					return fmt.Errorf("svm: specified nu is infeasible")
				}
			}
		}
	}
	if p.Kernel.Type == Precomputed {
		if err := checkPrecomputed(d.X, maxSerial(d.X)); err != nil {
			return err
		}
	}
	return nil
}

func (p *Params) printf(format string, args ...any) {
	if p.Progress != nil {
		fmt.Fprintf(p.Progress, format, args...)
	}
}

func (p *Params) warnf(format string, args ...any) {
	w := p.Warnings
	if w == nil {
		w = p.Progress
	}
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

// BinaryStats describes one solver run: a one-vs-one binary problem of a
// classifier, or the single problem of one-class SVM and regression.
type BinaryStats struct {
	Iterations  int
	Obj         float64
	Rho         float64
	NSV, NBSV   int
	KernelEvals int64 // kernel entries computed (after caching)
	Time        time.Duration
	// Status is Converged, or IterationLimit / TimeLimit when MaxIter or
	// Deadline stopped the run.
	Status Status
	// Trace holds the run's objective and violation along the iterations
	// (Params.Trace; at most 4096 points, evenly thinned).
	Trace []TracePoint
}

type decisionFunction struct {
	alpha []float64
	rho   float64
}

// Train fits a model to d like LIBSVM's svm_train. Classification (C-SVC,
// nu-SVC) groups classes in order of first appearance (a -1/+1 problem with
// -1 first is swapped so that +1 is the positive class) and trains
// one-vs-one binary problems, C-SVC with class-weighted C; one-class SVM and
// regression solve one problem. The returned Model's Stats holds one entry
// per solver run.
func Train(d *Dataset, p *Params) (*Model, error) {
	if p == nil {
		if d == nil {
			return nil, fmt.Errorf("svm: empty training set")
		}
		p = DefaultParams(d.MaxIndex)
	}
	return train(d, p, newCRand(uint32(p.Seed)))
}

func train(d *Dataset, p *Params, rng *cRand) (*Model, error) {
	if d == nil || d.Len() == 0 {
		return nil, fmt.Errorf("svm: empty training set")
	}
	if err := p.validate(d); err != nil {
		return nil, err
	}
	if !p.Type.Classification() {
		return trainSingle(d, p, rng)
	}
	g := groupClasses(d.Y)
	l := d.Len()
	x := make([][]Node, l)
	for i := range x {
		x[i] = d.X[g.perm[i]]
	}
	nrClass := len(g.label)
	if nrClass == 1 {
		p.printf("WARNING: training data in only one class. See README for details.\n")
	}
	weightedC := make([]float64, nrClass)
	for i := range weightedC {
		weightedC[i] = p.C
	}
	for lab, w := range p.Weights {
		found := false
		for j := range g.label {
			if g.label[j] == lab {
				weightedC[j] *= w
				found = true
			}
		}
		if !found {
			p.warnf("WARNING: class label %d specified in weight is not found\n", lab)
		}
	}
	nonzero := make([]bool, l)
	nPairs := nrClass * (nrClass - 1) / 2
	f := make([]decisionFunction, nPairs)
	var probA, probB []float64
	if p.Probability {
		probA = make([]float64, nPairs)
		probB = make([]float64, nPairs)
	}
	stats := make([]BinaryStats, 0, nPairs)
	k := 0
	for i := 0; i < nrClass; i++ {
		for j := i + 1; j < nrClass; j++ {
			si, sj := g.start[i], g.start[j]
			ci, cj := g.count[i], g.count[j]
			sub := &Dataset{X: make([][]Node, ci+cj), Y: make([]float64, ci+cj), MaxIndex: d.MaxIndex}
			for t := 0; t < ci; t++ {
				sub.X[t] = x[si+t]
				sub.Y[t] = 1
			}
			for t := 0; t < cj; t++ {
				sub.X[ci+t] = x[sj+t]
				sub.Y[ci+t] = -1
			}
			if p.Probability {
				a, b, err := binarySVCProbability(sub, p, weightedC[i], weightedC[j], rng)
				if err != nil {
					return nil, err
				}
				probA[k], probB[k] = a, b
			}
			df, st, err := trainOne(sub, p, weightedC[i], weightedC[j])
			if err != nil {
				return nil, err
			}
			f[k] = df
			stats = append(stats, st)
			for t := 0; t < ci; t++ {
				if !nonzero[si+t] && math.Abs(df.alpha[t]) > 0 {
					nonzero[si+t] = true
				}
			}
			for t := 0; t < cj; t++ {
				if !nonzero[sj+t] && math.Abs(df.alpha[ci+t]) > 0 {
					nonzero[sj+t] = true
				}
			}
			k++
		}
	}
	m := &Model{
		Type:    p.Type,
		Kernel:  p.Kernel,
		NrClass: nrClass,
		Label:   append([]int(nil), g.label...),
		Rho:     make([]float64, nPairs),
		ProbA:   probA,
		ProbB:   probB,
		Stats:   stats,
	}
	for i := range f {
		m.Rho[i] = f[i].rho
	}
	totalSV := 0
	nzCount := make([]int, nrClass)
	m.NSV = make([]int, nrClass)
	for i := 0; i < nrClass; i++ {
		n := 0
		for j := 0; j < g.count[i]; j++ {
			if nonzero[g.start[i]+j] {
				n++
				totalSV++
			}
		}
		m.NSV[i] = n
		nzCount[i] = n
	}
	p.printf("Total nSV = %d\n", totalSV)
	m.SV = make([][]Node, 0, totalSV)
	m.SVIndices = make([]int, 0, totalSV)
	for i := 0; i < l; i++ {
		if nonzero[i] {
			m.SV = append(m.SV, x[i])
			m.SVIndices = append(m.SVIndices, g.perm[i]+1)
		}
	}
	nzStart := make([]int, nrClass)
	for i := 1; i < nrClass; i++ {
		nzStart[i] = nzStart[i-1] + nzCount[i-1]
	}
	m.SVCoef = make([][]float64, max(nrClass-1, 0))
	for i := range m.SVCoef {
		m.SVCoef[i] = make([]float64, totalSV)
	}
	k = 0
	for i := 0; i < nrClass; i++ {
		for j := i + 1; j < nrClass; j++ {
			si, sj := g.start[i], g.start[j]
			ci, cj := g.count[i], g.count[j]
			q := nzStart[i]
			for t := 0; t < ci; t++ {
				if nonzero[si+t] {
					m.SVCoef[j-1][q] = f[k].alpha[t]
					q++
				}
			}
			q = nzStart[j]
			for t := 0; t < cj; t++ {
				if nonzero[sj+t] {
					m.SVCoef[i][q] = f[k].alpha[ci+t]
					q++
				}
			}
			k++
		}
	}
	return m, nil
}

// trainSingle is svm_train for one-class SVM and regression: one problem,
// every row with a non-zero coefficient a support vector in input order.
func trainSingle(d *Dataset, p *Params, rng *cRand) (*Model, error) {
	m := &Model{Type: p.Type, Kernel: p.Kernel, NrClass: 2}
	if p.Probability && p.Type.Regression() {
		sigma, err := svrProbability(d, p, rng)
		if err != nil {
			return nil, err
		}
		m.ProbA = []float64{sigma}
	}
	df, st, err := trainOne(d, p, 0, 0)
	if err != nil {
		return nil, err
	}
	m.Rho = []float64{df.rho}
	m.Stats = []BinaryStats{st}
	m.SVCoef = [][]float64{nil}
	for i, a := range df.alpha {
		if math.Abs(a) > 0 {
			m.SV = append(m.SV, d.X[i])
			m.SVCoef[0] = append(m.SVCoef[0], a)
			m.SVIndices = append(m.SVIndices, i+1)
		}
	}
	return m, nil
}

// groupClasses is LIBSVM's svm_group_classes.
type classGroups struct {
	label        []int
	start, count []int
	perm         []int
}

func groupClasses(y []float64) classGroups {
	var g classGroups
	dataLabel := make([]int, len(y))
	for i, v := range y {
		lab := int(v)
		j := 0
		for ; j < len(g.label); j++ {
			if lab == g.label[j] {
				g.count[j]++
				break
			}
		}
		dataLabel[i] = j
		if j == len(g.label) {
			g.label = append(g.label, lab)
			g.count = append(g.count, 1)
		}
	}
	if len(g.label) == 2 && g.label[0] == -1 && g.label[1] == 1 {
		g.label[0], g.label[1] = g.label[1], g.label[0]
		g.count[0], g.count[1] = g.count[1], g.count[0]
		for i := range dataLabel {
			dataLabel[i] = 1 - dataLabel[i]
		}
	}
	n := len(g.label)
	g.start = make([]int, n)
	for i := 1; i < n; i++ {
		g.start[i] = g.start[i-1] + g.count[i-1]
	}
	g.perm = make([]int, len(y))
	pos := append([]int(nil), g.start...)
	for i := range y {
		g.perm[pos[dataLabel[i]]] = i
		pos[dataLabel[i]]++
	}
	return g
}

// newSolver returns a solver for LIBSVM's dual with Hessian Q, linear term
// lin, signs y and bounds Cp/Cn, set up from p (rule, step, limits, trace).
func (p *Params) newSolver(Q qMatrix, lin []float64, y []int8, Cp, Cn float64, nu bool) *smoSolver {
	// The solver permutes y and lin (shrinking): give it copies.
	return &smoSolver{l: len(y), y: append([]int8(nil), y...), Q: Q, QD: Q.diag(), p: append([]float64(nil), lin...), eps: p.Eps, Cp: Cp, Cn: Cn, nu: nu,
		progress: p.Progress, maxIter: p.MaxIter, deadline: p.Deadline, rule: p.Rule, fixed: p.FixedStep,
		seed: uint64(p.Seed), tracing: p.Trace}
}

// trainOne is svm_train_one: it solves one problem (labels +1/-1 in sub.Y
// for classification, targets for regression), prints LIBSVM's summary and
// returns the coefficients y*alpha (alpha - alpha* for regression).
func trainOne(sub *Dataset, p *Params, Cp, Cn float64) (decisionFunction, BinaryStats, error) {
	t0 := time.Now()
	l := sub.Len()
	cacheBytes := int64(p.CacheMB * (1 << 20))
	var si solutionInfo
	var evals int64
	alpha := make([]float64, l)
	run := func(s *smoSolver, a []float64) {
		si = s.solve(a, p.Shrinking)
		evals = s.Q.kernelEvals()
		if si.status == IterationLimit {
			p.warnf("\nWARNING: reaching max number of iterations\n")
		}
	}
	switch p.Type {
	case CSVC:
		y := classSigns(sub.Y)
		Q := newKernelMatrix(sub.X, sub.MaxIndex, y, p.Kernel, cacheBytes, p.Threads)
		defer Q.close()
		run(p.newSolver(Q, fill(l, -1), y, Cp, Cn, false), alpha)
		sumAlpha := 0.0
		for i := range alpha {
			sumAlpha += alpha[i]
		}
		if Cp == Cn {
			p.printf("nu = %f\n", sumAlpha/(Cp*float64(l)))
		}
		for i := range alpha {
			alpha[i] *= float64(y[i])
		}
	case NuSVC:
		y := classSigns(sub.Y)
		sumPos, sumNeg := p.Nu*float64(l)/2, p.Nu*float64(l)/2
		for i := range alpha {
			if y[i] == 1 {
				alpha[i] = cmin(1.0, sumPos)
				sumPos -= alpha[i]
			} else {
				alpha[i] = cmin(1.0, sumNeg)
				sumNeg -= alpha[i]
			}
		}
		Q := newKernelMatrix(sub.X, sub.MaxIndex, y, p.Kernel, cacheBytes, p.Threads)
		defer Q.close()
		run(p.newSolver(Q, make([]float64, l), y, 1, 1, true), alpha)
		r := si.r
		p.printf("C = %f\n", 1/r)
		for i := range alpha {
			alpha[i] *= float64(y[i]) / r
		}
		si.rho /= r
		si.obj /= r * r
		si.upperP = 1 / r
		si.upperN = 1 / r
	case OneClass:
		n := int(p.Nu * float64(l))
		for i := 0; i < n && i < l; i++ {
			alpha[i] = 1
		}
		if n < l {
			alpha[n] = p.Nu*float64(l) - float64(n)
		}
		ones := make([]int8, l)
		for i := range ones {
			ones[i] = 1
		}
		Q := newKernelMatrix(sub.X, sub.MaxIndex, ones, p.Kernel, cacheBytes, p.Threads)
		defer Q.close()
		run(p.newSolver(Q, make([]float64, l), ones, 1, 1, false), alpha)
	case EpsilonSVR, NuSVR:
		alpha2 := make([]float64, 2*l)
		lin := make([]float64, 2*l)
		y := make([]int8, 2*l)
		nu := p.Type == NuSVR
		sum := p.C * p.Nu * float64(l) / 2
		for i := 0; i < l; i++ {
			if nu {
				alpha2[i] = cmin(sum, p.C)
				alpha2[i+l] = alpha2[i]
				sum -= alpha2[i]
				lin[i], lin[i+l] = -sub.Y[i], sub.Y[i]
			} else {
				lin[i], lin[i+l] = p.P-sub.Y[i], p.P+sub.Y[i]
			}
			y[i], y[i+l] = 1, -1
		}
		Q := newSVRQ(sub.X, sub.MaxIndex, p.Kernel, cacheBytes, p.Threads)
		defer Q.close()
		run(p.newSolver(Q, lin, y, p.C, p.C, nu), alpha2)
		sumAlpha := 0.0
		for i := 0; i < l; i++ {
			alpha[i] = alpha2[i] - alpha2[i+l]
			sumAlpha += math.Abs(alpha[i])
		}
		if nu {
			p.printf("epsilon = %f\n", -si.r)
		} else {
			p.printf("nu = %f\n", sumAlpha/(p.C*float64(l)))
		}
	}
	p.printf("obj = %f, rho = %f\n", si.obj, si.rho)
	nSV, nBSV := 0, 0
	for i := range alpha {
		if math.Abs(alpha[i]) > 0 {
			nSV++
			if sub.Y[i] > 0 {
				if math.Abs(alpha[i]) >= si.upperP {
					nBSV++
				}
			} else if math.Abs(alpha[i]) >= si.upperN {
				nBSV++
			}
		}
	}
	p.printf("nSV = %d, nBSV = %d\n", nSV, nBSV)
	st := BinaryStats{Iterations: si.iterations, Obj: si.obj, Rho: si.rho, NSV: nSV, NBSV: nBSV,
		KernelEvals: evals, Time: time.Since(t0), Status: si.status, Trace: si.trace}
	return decisionFunction{alpha: alpha, rho: si.rho}, st, nil
}

// classSigns maps labels to +1 (y > 0) and -1.
func classSigns(labels []float64) []int8 {
	y := make([]int8, len(labels))
	for i, v := range labels {
		if v > 0 {
			y[i] = 1
		} else {
			y[i] = -1
		}
	}
	return y
}
