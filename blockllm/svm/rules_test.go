package svm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomSolverState returns a solver on n random points with random
// gradient, alphas (some at each bound) and, when nu, Solver_NU's groups.
func randomSolverState(r *rand.Rand, n int, nu bool) *smoSolver {
	x := [][]Node{}
	y := []int8{}
	for k := 0; k < n; k++ {
		x = append(x, []Node{{1, r.Float64()}, {2, r.Float64()}})
		y = append(y, int8(1-2*r.IntN(2)))
	}
	Q := newKernelMatrix(x, 2, y, Kernel{Type: RBF, Gamma: 1}, 1<<20, 1)
	s := &smoSolver{l: n, activeSize: n, y: y, Q: Q, QD: Q.qd, eps: 1e-9, Cp: 1, Cn: 0.5, nu: nu, L: 1}
	s.G = make([]float64, n)
	s.status = make([]int8, n)
	s.alpha = make([]float64, n)
	for i := range s.G {
		s.G[i] = r.NormFloat64()
		switch r.IntN(3) {
		case 0:
		case 1:
			s.alpha[i] = s.getC(i)
		default:
			s.alpha[i] = s.getC(i) * r.Float64()
		}
		s.updateStatus(i)
	}
	return s
}

// pairModel is the 1/L model decrease h = D t - 2L t^2 of the fixed step
// along the pair (i up, j down), 0 when the pair cannot move.
func pairModel(s *smoSolver, i, j int) float64 {
	if i == j || !s.canUp(i) || !s.canDown(j) || s.group(i) != s.group(j) {
		return 0
	}
	D := float64(s.y[j])*s.G[j] - float64(s.y[i])*s.G[i]
	c := math.Min(s.capUp(i), s.capDown(j))
	if D <= 0 || c <= 0 {
		return 0
	}
	tt := math.Min(c, D/(4*s.L))
	return D*tt - 2*s.L*tt*tt
}

// GS-q inside the solver picks the pair with the largest clipped model
// decrease (brute force over all pairs), with and without Solver_NU's groups.
func TestGSQInSolverMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		nu := r.IntN(2) == 0
		s := randomSolverState(r, 3+r.IntN(10), nu)
		n := s.l
		h := func(i, j int) float64 { return pairModel(s, i, j) }
		best := 0.0
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				best = math.Max(best, h(i, j))
			}
		}
		if !s.selectGSQ() {
			if best > 0 && s.gap >= s.eps {
				t.Fatalf("trial %d: no pair, best %v", trial, best)
			}
			continue
		}
		got := h(s.rs.wi, s.rs.wj)
		if math.Abs(got-best) > 1e-12*math.Max(1, best) {
			t.Fatalf("trial %d (nu %v): got %v (%d,%d), best %v", trial, nu, got, s.rs.wi, s.rs.wj, best)
		}
	}
}

// gs1Model is g.d + (L/2)||d||_1^2 of the solver's current GS-1 direction.
func gs1Model(s *smoSolver) float64 {
	gd, n1 := 0.0, 0.0
	for k, t := range s.rs.dIdx {
		gd += float64(s.y[t]) * s.G[t] * s.rs.dVal[k]
		n1 += math.Abs(s.rs.dVal[k])
	}
	return gd + s.L/2*n1*n1
}

// The GS-1 direction inside the solver is feasible (each group's sum
// unchanged, bounds kept) and the steepest descent in the 1-norm: its
// model value is at most that of the best pair (GS-q), which is at most that
// of the maximal violating pair; without groups it equals GS1Direction's.
func TestGS1InSolverIsSteepest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 300; trial++ {
		nu := r.IntN(2) == 0
		s := randomSolverState(r, 3+r.IntN(12), nu)
		s.L = 0.2 + 2*r.Float64()
		if !s.selectGS1() || !s.rs.dir {
			continue
		}
		var sums [2]float64
		for k, c := range s.rs.dIdx {
			sums[s.group(c)] += s.rs.dVal[k]
			d := s.rs.dVal[k]
			if d > 0 {
				require.LessOrEqual(t, d, s.capUp(c)+1e-15, "trial %d", trial)
			} else {
				require.LessOrEqual(t, -d, s.capDown(c)+1e-15, "trial %d", trial)
			}
		}
		require.InDelta(t, 0, sums[0], 1e-12, "trial %d", trial)
		require.InDelta(t, 0, sums[1], 1e-12, "trial %d", trial)
		m1 := gs1Model(s)
		require.True(t, s.selectGSQ())
		hq := pairModel(s, s.rs.wi, s.rs.wj)
		require.True(t, s.selectMVP())
		hm := pairModel(s, s.rs.wi, s.rs.wj)
		require.LessOrEqual(t, m1, -hq+1e-12, "trial %d: GS-1 model above GS-q's", trial)
		require.LessOrEqual(t, hm, hq+1e-12, "trial %d: MVP above GS-q", trial)
		if !nu {
			n := s.l
			g, x, lo, up := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
			for i := 0; i < n; i++ {
				yi := float64(s.y[i])
				g[i], x[i] = yi*s.G[i], yi*s.alpha[i]
				lo[i], up[i] = math.Min(0, yi*s.getC(i)), math.Max(0, yi*s.getC(i))
			}
			idx, dv := GS1Direction(g, x, lo, up, s.L)
			want := 0.0
			n1 := 0.0
			for k, i := range idx {
				want += g[i] * dv[k]
				n1 += math.Abs(dv[k])
			}
			want += s.L / 2 * n1 * n1
			require.InDelta(t, want, m1, 1e-12*math.Max(1, math.Abs(want)), "trial %d", trial)
		}
	}
}

// solveDense runs the LIBSVM solver on a bounded synthetic problem
// (sum x = Gamma, 0 <= x <= C) through the dense Q adapter.
func solveDense(p Problem, C float64, rule Rule, fixed, shrinking bool) solutionInfo {
	step := ExactStep
	if fixed {
		step = FixedStep
	}
	si, _ := solveBoundedDense(p, C, rule, step, shrinking, 1e-3, 2000000, 0, false, 1)
	return si
}

// The greedy 2-coordinate paper's claims that hold, on fixed seeds, with
// every rule inside the same solver (shrinking on):
//   - on bound-constrained problems GS-1 needs no more iterations than the
//     maximal violating pair or GS-q with fixed 1/L steps (and with exact
//     steps);
//   - on SVM duals whose bounds are tight (C = 0.1) GS-1 needs fewer
//     iterations than the maximal violating pair with fixed steps;
//   - uniformly random pairs need more iterations than every greedy rule;
//   - exact steps need no more iterations than fixed steps.
func TestSolverPaperClaims(t *testing.T) {
	iters := map[string]int{}
	key := func(prob string, rule Rule, fixed bool) string {
		return fmt.Sprintf("%s/%v/%v", prob, rule, fixed)
	}
	rules := []Rule{GS1, GSS, GSQ, WSS2, Random}
	for seed := uint64(1); seed <= 3; seed++ {
		n := 150 * int(seed)
		p := SyntheticBoundedProblem(n, seed)
		prob := fmt.Sprintf("bounded n=%d seed=%d", n, seed)
		for _, rule := range rules {
			for _, fixed := range []bool{true, false} {
				si := solveDense(p, 5/float64(n), rule, fixed, true)
				require.Equal(t, Converged, si.status, "%s %v", prob, rule)
				iters[key(prob, rule, fixed)] = si.iterations
			}
		}
		for _, fixed := range []bool{true, false} {
			g1 := iters[key(prob, GS1, fixed)]
			require.LessOrEqual(t, g1, iters[key(prob, GSS, fixed)], "%s fixed=%v: GS-1 vs MVP", prob, fixed)
			require.LessOrEqual(t, g1, iters[key(prob, GSQ, fixed)], "%s fixed=%v: GS-1 vs GS-q", prob, fixed)
		}
	}
	for _, name := range []string{"heart_scale", "synth3", "ties"} {
		d := loadTestData(t, name)
		for _, rule := range rules {
			for _, fixed := range []bool{true, false} {
				p := DefaultParams(d.MaxIndex)
				p.C, p.Rule, p.FixedStep = 0.1, rule, fixed
				m, err := Train(d, p)
				require.NoError(t, err)
				it := 0
				for _, st := range m.Stats {
					require.Equal(t, Converged, st.Status)
					it += st.Iterations
				}
				iters[key(name, rule, fixed)] = it
			}
		}
		require.Less(t, iters[key(name, GS1, true)], iters[key(name, GSS, true)], "%s: GS-1 vs MVP, fixed steps, C = 0.1", name)
	}
	for k, v := range iters {
		t.Logf("%s: %d", k, v)
	}
	for _, prob := range []string{"bounded n=150 seed=1", "bounded n=300 seed=2", "heart_scale", "synth3"} {
		for _, fixed := range []bool{true, false} {
			for _, rule := range []Rule{GS1, GSS, GSQ, WSS2} {
				require.Greater(t, iters[key(prob, Random, fixed)], iters[key(prob, rule, fixed)], "%s: random vs %v", prob, rule)
				if !fixed {
					require.LessOrEqual(t, iters[key(prob, rule, false)], iters[key(prob, rule, true)], "%s %v: exact vs fixed", prob, rule)
				}
			}
		}
	}
}

// Every rule, with both steps, with and without shrinking, solves every
// problem type: converged, and the objective within 1e-3 of LIBSVM's
// (WSS2, exact steps); the traced objective never rises and ends at the
// solution's.
func TestEveryRuleEveryType(t *testing.T) {
	h := loadTestData(t, "heart_scale")
	d := &Dataset{X: h.X[:70], Y: h.Y[:70], MaxIndex: h.MaxIndex}
	reg := &Dataset{X: d.X, MaxIndex: d.MaxIndex}
	for i := range d.X {
		reg.Y = append(reg.Y, float64(i%7)/3-1+0.1*d.X[i][0].Value)
	}
	for _, typ := range []SVMType{CSVC, NuSVC, OneClass, EpsilonSVR, NuSVR} {
		data := d
		if typ.Regression() {
			data = reg
		}
		ref := DefaultParams(data.MaxIndex)
		ref.Type = typ
		rm, err := Train(data, ref)
		require.NoError(t, err)
		for _, rule := range []Rule{WSS2, GSS, GSQ, GS1, Random} {
			for _, fixed := range []bool{false, true} {
				for _, shrink := range []bool{true, false} {
					name := fmt.Sprintf("%v %v fixed=%v shrink=%v", typ, rule, fixed, shrink)
					p := DefaultParams(data.MaxIndex)
					p.Type, p.Rule, p.FixedStep, p.Shrinking, p.Trace = typ, rule, fixed, shrink, true
					m, err := Train(data, p)
					require.NoError(t, err, name)
					st := m.Stats[0]
					require.Equal(t, Converged, st.Status, name)
					require.InDelta(t, rm.Stats[0].Obj, st.Obj, 1e-3*math.Max(1, math.Abs(rm.Stats[0].Obj)), name)
					tr := st.Trace
					require.NotEmpty(t, tr, name)
					require.Equal(t, st.Iterations, tr[len(tr)-1].Iter, name)
					for k := 1; k < len(tr); k++ {
						require.LessOrEqual(t, tr[k].F, tr[k-1].F+1e-9*math.Abs(tr[k-1].F)+1e-12, "%s: f rose at trace point %d", name, k)
						require.GreaterOrEqual(t, tr[k].KernelEvals, tr[k-1].KernelEvals, name)
					}
					if typ != NuSVC { // nu-SVC reports obj scaled by 1/r^2
						require.InDelta(t, st.Obj, tr[len(tr)-1].F, 1e-9*math.Max(1, math.Abs(st.Obj)), name)
					}
				}
			}
		}
	}
}

// Threads change nothing: every problem type and rule gives the same model
// with 3 goroutines (tiny thresholds, so that columns, reorders, scans and
// gradient updates are all split) as with one.
func TestThreadsSameModelEveryType(t *testing.T) {
	oldRows, oldActive := parallelMinRows, parallelMinActive
	defer func() { parallelMinRows, parallelMinActive = oldRows, oldActive }()
	h := loadTestData(t, "heart_scale")
	reg := &Dataset{X: h.X, MaxIndex: h.MaxIndex}
	for i := range h.X {
		reg.Y = append(reg.Y, float64(i%5)/2-1+0.2*h.X[i][0].Value)
	}
	for _, typ := range []SVMType{CSVC, NuSVC, OneClass, EpsilonSVR, NuSVR} {
		data := h
		if typ.Regression() {
			data = reg
		}
		for _, rule := range []Rule{WSS2, GS1} {
			train := func(threads int) *Model {
				p := DefaultParams(data.MaxIndex)
				p.Type, p.Rule, p.Threads, p.CacheMB = typ, rule, threads, 0.2
				m, err := Train(data, p)
				require.NoError(t, err)
				return m
			}
			parallelMinRows, parallelMinActive = oldRows, oldActive
			m1 := train(1)
			parallelMinRows, parallelMinActive = 4, 8
			m3 := train(3)
			require.Equal(t, m1.Rho, m3.Rho, "%v %v", typ, rule)
			require.Equal(t, m1.SVCoef, m3.SVCoef, "%v %v", typ, rule)
			require.Equal(t, m1.Stats[0].Iterations, m3.Stats[0].Iterations, "%v %v", typ, rule)
		}
	}
}
