package svm

import (
	"fmt"
	"io"
	"math"
	"time"
)

// Params are the C-SVC training parameters, named after LIBSVM's flags. The
// zero value is not LIBSVM's default; start from DefaultParams.
type Params struct {
	Kernel Kernel
	// C is the cost (-c). Must be > 0.
	C float64
	// Eps is the stopping tolerance on the maximal violation gap (-e).
	Eps float64
	// CacheMB is the kernel-cache size in MB (-m).
	CacheMB float64
	// Shrinking enables LIBSVM's shrinking heuristic (-h).
	Shrinking bool
	// Probability trains Platt-scaling probability estimates (-b).
	Probability bool
	// Weights multiplies C for the class with the given label (-wi).
	Weights map[int]float64
	// Rule is the working-set rule: WSS2 (default, LIBSVM's own solver with
	// shrinking and caching) or another Rule run by the general solver with
	// exact steps on the dual in x = y*alpha variables.
	Rule Rule
	// Threads computes kernel columns on this many goroutines (<= 1: one).
	Threads int
	// MaxIter caps iterations per binary problem (0: LIBSVM's max(1e7, 100 l)).
	MaxIter int
	// Seed seeds the random generator used for probability folds and the
	// random rule.
	Seed int64
	// Progress receives LIBSVM's progress and summary lines ("optimization
	// finished, #iter = N", "obj = .., rho = ..", "nSV = .., nBSV = ..");
	// nil is quiet.
	Progress io.Writer
}

// DefaultParams returns LIBSVM's defaults for n features: RBF kernel with
// gamma = 1/n (1 when n is 0), degree 3, coef0 0, C = 1, eps = 1e-3,
// 100 MB cache, shrinking on, rule WSS2, one thread.
func DefaultParams(numFeatures int) *Params {
	g := 1.0
	if numFeatures > 0 {
		g = 1 / float64(numFeatures)
	}
	return &Params{
		Kernel:    Kernel{Type: RBF, Degree: 3, Gamma: g},
		C:         1,
		Eps:       1e-3,
		CacheMB:   100,
		Shrinking: true,
		Rule:      WSS2,
		Threads:   1,
		Seed:      1,
	}
}

func (p *Params) validate() error {
	if err := p.Kernel.validate(); err != nil {
		return err
	}
	if p.CacheMB <= 0 {
		return fmt.Errorf("svm: cache_size <= 0")
	}
	if p.Eps <= 0 {
		return fmt.Errorf("svm: eps <= 0")
	}
	if !(p.C > 0) {
		return fmt.Errorf("svm: C <= 0")
	}
	for lab, w := range p.Weights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("svm: weight for label %d must be finite and >= 0, got %v", lab, w)
		}
	}
	switch p.Rule {
	case WSS2, GS1, GSS, GSQ, Random:
	default:
		return fmt.Errorf("svm: unknown rule %d", int(p.Rule))
	}
	return nil
}

func (p *Params) printf(format string, args ...any) {
	if p.Progress != nil {
		fmt.Fprintf(p.Progress, format, args...)
	}
}

// BinaryStats describes one trained binary (one-vs-one) sub-problem.
type BinaryStats struct {
	Iterations  int
	Obj         float64
	Rho         float64
	NSV, NBSV   int
	KernelEvals int64 // kernel entries computed (after caching)
	Time        time.Duration
}

type decisionFunction struct {
	alpha []float64
	rho   float64
}

// Train fits a C-SVC to d like LIBSVM's svm_train: classes grouped in order of
// first appearance (a -1/+1 problem with -1 first is swapped so that +1 is the
// positive class), one-vs-one binary problems, class-weighted C. The returned
// Model's Stats holds one entry per binary problem.
func Train(d *Dataset, p *Params) (*Model, error) {
	if d == nil || d.Len() == 0 {
		return nil, fmt.Errorf("svm: empty training set")
	}
	if p == nil {
		p = DefaultParams(d.MaxIndex)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	for i, y := range d.Y {
		if !isFinite(y) {
			return nil, fmt.Errorf("svm: row %d: label %v is not finite", i+1, y)
		}
		if y != math.Trunc(y) || math.Abs(y) > math.MaxInt32 {
			return nil, fmt.Errorf("svm: row %d: label %v is not an integer (C-SVC needs class labels)", i+1, y)
		}
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
			p.printf("WARNING: class label %d specified in weight is not found\n", lab)
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
	rng := newRand(p.Seed)
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

type classGroups struct {
	label        []int
	start, count []int
	perm         []int
}

// groupClasses is LIBSVM's svm_group_classes.
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

// trainOne solves one binary C-SVC (labels +1/-1 in sub.Y) and prints
// LIBSVM's per-problem summary.
func trainOne(sub *Dataset, p *Params, Cp, Cn float64) (decisionFunction, BinaryStats, error) {
	t0 := time.Now()
	l := sub.Len()
	y := make([]int8, l)
	for i := range y {
		if sub.Y[i] > 0 {
			y[i] = 1
		} else {
			y[i] = -1
		}
	}
	alpha := make([]float64, l)
	var si solutionInfo
	var evals int64
	if p.Rule == WSS2 {
		Q := newKernelMatrix(sub.X, sub.MaxIndex, y, p.Kernel, int64(p.CacheMB*(1<<20)), p.Threads)
		defer Q.close()
		s := &smoSolver{l: l, y: append([]int8(nil), y...), Q: Q, QD: Q.qd, p: make([]float64, l),
			eps: p.Eps, Cp: Cp, Cn: Cn, maxIter: p.MaxIter}
		if p.Progress != nil {
			s.progress = p.Progress
		}
		for i := range s.p {
			s.p[i] = -1
		}
		si = s.solve(alpha, p.Shrinking)
		evals = Q.evals.Load()
	} else {
		var err error
		si, evals, err = solveDualGeneral(sub, y, p, Cp, Cn, alpha)
		if err != nil {
			return decisionFunction{}, BinaryStats{}, err
		}
	}
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
		KernelEvals: evals, Time: time.Since(t0)}
	return decisionFunction{alpha: alpha, rho: si.rho}, st, nil
}
