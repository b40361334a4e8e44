package svm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomPSD returns A'A/m + ridge*I for a random m×n A with column scales
// spread over `spread` orders of magnitude (ill-conditioned when large).
func randomPSD(r *rand.Rand, n, m int, ridge, spread float64) *DenseQuadratic {
	A := make([]float64, m*n)
	for j := 0; j < n; j++ {
		s := math.Pow(10, spread*float64(j)/float64(max(n-1, 1))-spread/2)
		for i := 0; i < m; i++ {
			A[i*n+j] = r.NormFloat64() * s
		}
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
		Q[i*n+i] += ridge
	}
	return &DenseQuadratic{N: n, Data: Q}
}

func randVec(r *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64() * scale
	}
	return v
}

// phi is the GS-1 model g.d + (L/2)||d||_1^2.
func phi(g, d []float64, L float64) float64 {
	gd, n1 := 0.0, 0.0
	for i := range d {
		gd += g[i] * d[i]
		n1 += math.Abs(d[i])
	}
	return gd + L/2*n1*n1
}

// bruteGS1 minimises g.(p-q) + (L/2)(sum p + sum q)^2 over 0<=p<=U, 0<=q<=D,
// sum p = sum q (equivalent to the GS-1 problem with d = p - q) by FISTA with
// an exact projection (bisection on the multiplier of the equality).
func bruteGS1(g, U, D []float64, L float64) []float64 {
	n := len(g)
	proj := func(p0, q0, p, q []float64) {
		f := func(lam float64) float64 {
			s := 0.0
			for i := 0; i < n; i++ {
				s += math.Min(math.Max(p0[i]-lam, 0), U[i]) - math.Min(math.Max(q0[i]+lam, 0), D[i])
			}
			return s
		}
		lo, hi := -1e4, 1e4
		for it := 0; it < 70; it++ {
			mid := (lo + hi) / 2
			if f(mid) > 0 {
				lo = mid
			} else {
				hi = mid
			}
		}
		lam := (lo + hi) / 2
		for i := 0; i < n; i++ {
			p[i] = math.Min(math.Max(p0[i]-lam, 0), U[i])
			q[i] = math.Min(math.Max(q0[i]+lam, 0), D[i])
		}
	}
	p, q := make([]float64, n), make([]float64, n)
	yp, yq := make([]float64, n), make([]float64, n)
	pp, pq := make([]float64, n), make([]float64, n)
	tp, tq := make([]float64, n), make([]float64, n)
	step := 1 / (L * float64(2*n))
	tk := 1.0
	for it := 0; it < 4000; it++ {
		s := 0.0
		for i := 0; i < n; i++ {
			s += yp[i] + yq[i]
		}
		for i := 0; i < n; i++ {
			tp[i] = yp[i] - step*(g[i]+L*s)
			tq[i] = yq[i] - step*(-g[i]+L*s)
		}
		copy(pp, p)
		copy(pq, q)
		proj(tp, tq, p, q)
		tn := (1 + math.Sqrt(1+4*tk*tk)) / 2
		for i := 0; i < n; i++ {
			yp[i] = p[i] + (tk-1)/tn*(p[i]-pp[i])
			yq[i] = q[i] + (tk-1)/tn*(q[i]-pq[i])
		}
		tk = tn
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = p[i] - q[i]
	}
	return d
}

func TestGS1DirectionMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 150; trial++ {
		n := 2 + r.IntN(6)
		g := randVec(r, n, 1)
		L := 0.1 + 2*r.Float64()
		lower, upper, x := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := 0; i < n; i++ {
			lower[i] = -r.Float64()
			upper[i] = r.Float64()
			switch r.IntN(4) {
			case 0:
				x[i] = lower[i]
			case 1:
				x[i] = upper[i]
			default:
				x[i] = lower[i] + (upper[i]-lower[i])*r.Float64()
			}
			if r.IntN(5) == 0 { // a coordinate without one of its bounds
				if r.IntN(2) == 0 {
					lower[i] = math.Inf(-1)
				} else {
					upper[i] = math.Inf(1)
				}
			}
		}
		idx, dv := GS1Direction(g, x, lower, upper, L)
		d := make([]float64, n)
		for k, i := range idx {
			d[i] += dv[k]
		}
		sum := 0.0
		for i := range d {
			sum += d[i]
			require.GreaterOrEqual(t, x[i]+d[i], lower[i]-1e-12, "trial %d", trial)
			require.LessOrEqual(t, x[i]+d[i], upper[i]+1e-12, "trial %d", trial)
		}
		require.InDelta(t, 0, sum, 1e-12, "trial %d: sum(d)", trial)
		U, D := make([]float64, n), make([]float64, n)
		for i := range U {
			U[i] = math.Min(upper[i]-x[i], 1e3)
			D[i] = math.Min(x[i]-lower[i], 1e3)
		}
		bd := bruteGS1(g, U, D, L)
		fg, fb := phi(g, d, L), phi(g, bd, L)
		require.LessOrEqual(t, fg, fb+1e-9, "trial %d: GS-1 model value above brute force", trial)
		require.InDelta(t, fb, fg, 1e-6, "trial %d", trial)
		require.InDeltaSlice(t, bd, d, 2e-3, "trial %d", trial)
	}
}

func TestGSQMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 200; trial++ {
		n := 2 + r.IntN(12)
		sv := &solverState{n: n, g: randVec(r, n, 1), x: make([]float64, n), lower: make([]float64, n), upper: make([]float64, n), L: 0.2 + r.Float64()}
		for i := 0; i < n; i++ {
			sv.upper[i] = r.Float64()
			switch r.IntN(3) {
			case 0:
				sv.x[i] = 0
			case 1:
				sv.x[i] = sv.upper[i]
			default:
				sv.x[i] = sv.upper[i] * r.Float64()
			}
		}
		sv.p = &Problem{Lower: sv.lower}
		h := func(i, j int) float64 {
			D := sv.g[i] - sv.g[j]
			c := math.Min(sv.x[i]-sv.lower[i], sv.upper[j]-sv.x[j])
			if i == j || D <= 0 || c <= 0 {
				return 0
			}
			s := math.Min(c, D/(4*sv.L))
			return D*s - 2*sv.L*s*s
		}
		best := 0.0
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				best = math.Max(best, h(i, j))
			}
		}
		i, j := sv.gsqPair()
		if best == 0 {
			require.True(t, i < 0 || h(i, j) == 0)
			continue
		}
		require.InDelta(t, best, h(i, j), 1e-15*math.Max(1, best), "trial %d", trial)
	}
}

// softplusProblem is f(x) = sum_k softplus(w_k.x - b_k) + mu/2 |x|^2, a
// smooth non-quadratic objective with L = max_ij (1/4 sum_k |w_ki w_kj| + mu [i=j]).
func softplusProblem(r *rand.Rand, n, m int) Problem {
	W := randVec(r, m*n, 1)
	b := randVec(r, m, 1)
	mu := 0.1
	L := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for k := 0; k < m; k++ {
				s += math.Abs(W[k*n+i] * W[k*n+j])
			}
			s /= 4
			if i == j {
				s += mu
			}
			L = math.Max(L, s)
		}
	}
	z := func(x []float64, k int) float64 {
		s := -b[k]
		for i := 0; i < n; i++ {
			s += W[k*n+i] * x[i]
		}
		return s
	}
	return Problem{
		N: n, L: L,
		Func: func(x []float64) float64 {
			f := 0.0
			for k := 0; k < m; k++ {
				zk := z(x, k)
				f += math.Max(zk, 0) + math.Log1p(math.Exp(-math.Abs(zk)))
			}
			for _, v := range x {
				f += mu / 2 * v * v
			}
			return f
		},
		Grad: func(g, x []float64) {
			for i := range g {
				g[i] = mu * x[i]
			}
			for k := 0; k < m; k++ {
				s := 1 / (1 + math.Exp(-z(x, k)))
				for i := 0; i < n; i++ {
					g[i] += s * W[k*n+i]
				}
			}
		},
	}
}

func TestRulesDecreaseEveryStep(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	n := 30
	Q := randomPSD(r, n, 10, 0.01, 2)
	c := randVec(r, n, 1)
	lo, up := make([]float64, n), make([]float64, n)
	for i := range lo {
		lo[i], up[i] = -0.2, 0.3
	}
	problems := map[string]Problem{
		"quad-unbounded": {Quad: Q, Linear: c, Gamma: 1},
		"quad-bounded":   {Quad: Q, Linear: c, Lower: lo, Upper: up, Gamma: 0.5},
		"softplus-bounded": func() Problem {
			p := softplusProblem(r, n, 8)
			p.Lower, p.Upper, p.Gamma = lo, up, 0.5
			return p
		}(),
		"softplus-unbounded": softplusProblem(r, n, 8),
	}
	for name, p := range problems {
		for _, rule := range []Rule{GS1, GSS, GSQ, WSS2, Random} {
			for _, step := range []Step{FixedStep, ExactStep} {
				if p.Quad == nil && (step == ExactStep || rule == WSS2) {
					_, err := Solve(p, &Settings{Rule: rule, Step: step})
					require.Error(t, err)
					continue
				}
				res, err := Solve(p, &Settings{Rule: rule, Step: step, MaxIter: 400, Trace: true, Seed: 3, Tol: 1e-9})
				require.NoError(t, err, "%s %v %v", name, rule, step)
				require.Len(t, res.Trace, res.Stats.Iterations+1)
				for k := 1; k < len(res.Trace); k++ {
					prev, cur := res.Trace[k-1].F, res.Trace[k].F
					require.LessOrEqual(t, cur, prev+1e-12*math.Abs(prev)+1e-15, "%s %v %v: f rose at iteration %d", name, rule, step, k)
				}
				if rule != Random {
					require.Less(t, res.Trace[len(res.Trace)-1].F, res.Trace[0].F, "%s %v %v: no progress", name, rule, step)
				}
				sum := 0.0
				for i, v := range res.X {
					sum += v
					if p.Lower != nil {
						require.GreaterOrEqual(t, v, p.Lower[i])
						require.LessOrEqual(t, v, p.Upper[i])
					}
				}
				require.InDelta(t, p.Gamma, sum, 1e-9, "%s %v %v: sum(x)", name, rule, step)
				if p.Func != nil {
					require.InDelta(t, p.Func(res.X), res.F, 1e-12)
				}
			}
		}
	}
}

// On a quadratic, the maintained gradient and objective equal direct ones.
func TestSolveQuadraticGradientConsistent(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	n := 25
	Q := randomPSD(r, n, 40, 0.1, 1)
	c := randVec(r, n, 1)
	lo, up := fill(n, -1), fill(n, 1)
	for _, rule := range []Rule{GS1, GSS, GSQ, WSS2} {
		res, err := Solve(Problem{Quad: Q, Linear: c, Lower: lo, Upper: up, Gamma: 2}, &Settings{Rule: rule, Step: ExactStep, Tol: 1e-10, MaxIter: 100000})
		require.NoError(t, err)
		require.Equal(t, Converged, res.Status, rule.String())
		g := append([]float64(nil), c...)
		f := 0.0
		for j := 0; j < n; j++ {
			Q.AddColumn(g, j, res.X[j])
		}
		for i := range g {
			f += res.X[i] * (g[i] + c[i]) / 2
		}
		require.InDeltaSlice(t, g, res.Grad, 1e-9)
		require.InDelta(t, f, res.F, 1e-9)
		require.LessOrEqual(t, res.Gap, 1e-10)
	}
}

// diagonalProblem is 1/2 sum d_i x_i^2 - c.x with sum(x) = 0; its optimum is
// x_i = (c_i + nu)/d_i with nu = -sum(c/d)/sum(1/d).
func diagonalProblem(r *rand.Rand, n int, spread float64) (Problem, float64) {
	Q := make([]float64, n*n)
	d := make([]float64, n)
	// Curvatures spread over 10^spread (ill-conditioned); the linear term is
	// sparse, so a few coordinates carry most of the gradient.
	c := make([]float64, n)
	for i := range d {
		d[i] = math.Pow(10, spread*r.Float64())
		Q[i*n+i] = d[i]
		if r.IntN(50) == 0 {
			c[i] = 10 * r.NormFloat64()
		}
	}
	sc, sd := 0.0, 0.0
	for i := range d {
		sc += c[i] / d[i]
		sd += 1 / d[i]
	}
	nu := -sc / sd
	fstar := 0.0
	for i := range d {
		x := (c[i] + nu) / d[i]
		fstar += d[i]*x*x/2 - c[i]*x
	}
	lin := make([]float64, n)
	for i := range lin {
		lin[i] = -c[i]
	}
	return Problem{Quad: &DenseQuadratic{N: n, Data: Q}, Linear: lin}, fstar
}

func TestGS1BeatsRandomOnIllConditioned(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	p, fstar := diagonalProblem(r, 500, 2)
	iters := 2000
	gs1, err := Solve(p, &Settings{Rule: GS1, MaxIter: iters, Tol: 1e-300, Trace: true})
	require.NoError(t, err)
	rnd, err := Solve(p, &Settings{Rule: Random, MaxIter: iters, Tol: 1e-300, Seed: 7})
	require.NoError(t, err)
	eG, eR := gs1.F-fstar, rnd.F-fstar
	require.GreaterOrEqual(t, eG, -1e-9)
	require.GreaterOrEqual(t, eR, -1e-9)
	t.Logf("f(x0)-f* %.3e; after %d iterations: f-f* GS-1 %.3e, random %.3e", gs1.Trace[0].F-fstar, iters, eG, eR)
	require.Less(t, eG, eR/10, "GS-1 should be far ahead of random pairs")
	// And GS-1 (exact steps) converges to the analytic optimum.
	ex, err := Solve(p, &Settings{Rule: GS1, Step: ExactStep, Tol: 1e-10})
	require.NoError(t, err)
	require.Equal(t, Converged, ex.Status)
	require.InDelta(t, fstar, ex.F, 1e-9*math.Abs(fstar)+1e-12)
}

func TestSolveErrors(t *testing.T) {
	Q := &DenseQuadratic{N: 2, Data: []float64{1, 0, 0, 1}}
	_, err := Solve(Problem{}, nil)
	require.Error(t, err)
	_, err = Solve(Problem{Quad: Q, Lower: []float64{0, 0}, Upper: []float64{1, 1}, Gamma: 3}, nil)
	require.ErrorContains(t, err, "infeasible")
	_, err = Solve(Problem{Quad: Q, Lower: []float64{0, 0}, Upper: []float64{-1, 1}}, nil)
	require.ErrorContains(t, err, "bad bounds")
	_, err = Solve(Problem{Quad: Q}, &Settings{X0: []float64{1, 1}})
	require.ErrorContains(t, err, "sum(X0)")
	_, err = Solve(Problem{N: 2, Grad: func(g, x []float64) {}}, nil)
	require.ErrorContains(t, err, "Lipschitz")
	calls := 0
	res, err := Solve(Problem{Quad: Q, Linear: []float64{1, -1}}, &Settings{Callback: func(iter int, gap float64) {
		require.Equal(t, calls, iter)
		require.Greater(t, gap, 0.0)
		calls++
	}})
	require.NoError(t, err)
	require.Equal(t, res.Stats.Iterations, calls)
	require.Greater(t, calls, 0)
	_, err = ParseRule("nope")
	require.Error(t, err)
	for _, name := range []string{"gs1", "wss2", "mvp", "gsq", "random"} {
		rule, err := ParseRule(name)
		require.NoError(t, err)
		require.Equal(t, name, rule.String())
	}
}
