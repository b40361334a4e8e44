package svm

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// The SVM dual in LIBSVM's variables (alpha, Q = yy'K, G = Q alpha - e) and
// in x = y*alpha (f = 1/2 x'Kx - y'x, sum x = 0, box bounds) have the same
// objective, feasible set and maximal-violation gap.
func TestSVMDualMappingMatchesLIBSVMForm(t *testing.T) {
	d := loadTestData(t, "heart_scale")
	k := Kernel{Type: RBF, Gamma: 1.0 / float64(d.MaxIndex)}
	Cp, Cn := 1.5, 0.7
	dual, err := NewSVMDual(d, k, Cp, Cn, 10, 1)
	require.NoError(t, err)
	defer dual.Close()
	l := d.Len()
	y := dual.Y
	K := func(i, j int) float64 { return k.Eval(d.X[i], d.X[j]) }
	r := newRand(9)
	for trial := 0; trial < 20; trial++ {
		// A random feasible alpha: random in [0, C], then y'alpha = 0 restored
		// by scaling the larger side.
		alpha := make([]float64, l)
		C := func(i int) float64 {
			if y[i] > 0 {
				return Cp
			}
			return Cn
		}
		sp, sn := 0.0, 0.0
		for i := range alpha {
			switch r.IntN(3) {
			case 0:
				alpha[i] = 0
			case 1:
				alpha[i] = C(i)
			default:
				alpha[i] = C(i) * r.Float64()
			}
			if y[i] > 0 {
				sp += alpha[i]
			} else {
				sn += alpha[i]
			}
		}
		for i := range alpha {
			if y[i] > 0 && sp > sn {
				alpha[i] *= sn / sp
			} else if y[i] < 0 && sn > sp {
				alpha[i] *= sp / sn
			}
		}
		// LIBSVM's form.
		G := make([]float64, l)
		obj := 0.0
		for i := 0; i < l; i++ {
			s := 0.0
			for j := 0; j < l; j++ {
				s += float64(y[i]) * float64(y[j]) * K(i, j) * alpha[j]
			}
			G[i] = s - 1
			obj += alpha[i] * (s/2 - 1)
		}
		m, M := math.Inf(-1), math.Inf(1) // m = max_{I_up} -y G, M = min_{I_low} -y G
		for i := 0; i < l; i++ {
			yi := float64(y[i])
			up := (y[i] > 0 && alpha[i] < C(i)) || (y[i] < 0 && alpha[i] > 0)
			low := (y[i] > 0 && alpha[i] > 0) || (y[i] < 0 && alpha[i] < C(i))
			if up {
				m = math.Max(m, -yi*G[i])
			}
			if low {
				M = math.Min(M, -yi*G[i])
			}
		}
		// The x form.
		x := make([]float64, l)
		sum := 0.0
		for i := range x {
			x[i] = float64(y[i]) * alpha[i]
			sum += x[i]
			require.GreaterOrEqual(t, x[i], dual.Problem.Lower[i])
			require.LessOrEqual(t, x[i], dual.Problem.Upper[i])
		}
		require.InDelta(t, 0, sum, 1e-9)
		g := make([]float64, l)
		f := 0.0
		for i := 0; i < l; i++ {
			s := 0.0
			for j := 0; j < l; j++ {
				s += K(i, j) * x[j]
			}
			g[i] = s - float64(y[i])
			f += x[i] * (s/2 - float64(y[i]))
			require.InDelta(t, float64(y[i])*g[i], G[i], 1e-9, "G = y*g")
		}
		require.InDelta(t, obj, f, 1e-8*math.Abs(obj))
		sv := &solverState{g: g, x: x, lower: dual.Problem.Lower, upper: dual.Problem.Upper}
		require.InDelta(t, math.Max(m-M, 0), sv.gap(), 1e-9, "gap")
	}
}

// Every rule, run by the general solver on the x-form dual, reaches LIBSVM's
// objective on heart_scale; rho agrees to the tolerance's order.
func TestSVMDualRulesReachLIBSVMObjective(t *testing.T) {
	d := loadTestData(t, "heart_scale")
	const objRef, rhoRef = -100.877288, 0.424462
	for _, rule := range []Rule{WSS2, GS1, GSS, GSQ} {
		p := DefaultParams(d.MaxIndex)
		p.Rule = rule
		m, err := Train(d, p)
		require.NoError(t, err, rule.String())
		st := m.Stats[0]
		require.Less(t, relErr(st.Obj, objRef), 1e-4, "%v obj %v", rule, st.Obj)
		require.InDelta(t, rhoRef, st.Rho, 5e-3, "%v rho", rule)
		require.InDelta(t, 132, st.NSV, 3, "%v nSV", rule)
	}
	// Random pairs get there too, more slowly.
	p := DefaultParams(d.MaxIndex)
	p.Rule = Random
	m, err := Train(d, p)
	require.NoError(t, err)
	require.Less(t, relErr(m.Stats[0].Obj, objRef), 1e-4)
}
