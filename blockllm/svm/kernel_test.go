package svm

import (
	"math"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWorkerPoolCoversEveryRowOnce(t *testing.T) {
	for _, workers := range []int{1, 3} {
		p := newWorkerPool(workers)
		for run := 0; run < 300; run++ {
			n := 1 + run*7%997
			hits := make([]atomic.Int32, n)
			var bad atomic.Bool
			p.run(n, 1+run%13, func(t, lo, hi int) {
				if t < 0 || t > workers {
					bad.Store(true)
				}
				for k := lo; k < hi; k++ {
					hits[k].Add(1)
				}
			})
			for k := range hits {
				require.Equal(t, int32(1), hits[k].Load(), "run %d row %d", run, k)
			}
			require.False(t, bad.Load())
		}
		p.close()
	}
}

// Kernel columns equal LIBSVM's kernel_function for every kernel type, on
// one and several goroutines, with and without the label signs.
func TestKernelColumnsMatchDirectEvaluation(t *testing.T) {
	d := loadTestData(t, "heart_scale")
	old := parallelMinRows
	parallelMinRows = 16
	defer func() { parallelMinRows = old }()
	for _, k := range []Kernel{{Type: Linear}, {Type: Polynomial, Degree: 3, Gamma: 0.1, Coef0: 1},
		{Type: RBF, Gamma: 1.0 / 13}, {Type: Sigmoid, Gamma: 0.05, Coef0: -0.5}} {
		for _, threads := range []int{1, 3, -1} {
			if threads == -1 { // merge-based dot products (huge feature indices)
				old := maxDenseIndex
				maxDenseIndex = 0
				defer func() { maxDenseIndex = old }()
				threads = 2
			}
			s := make([]int8, d.Len())
			for i := range s {
				s[i] = 1
				if d.Y[i] < 0 {
					s[i] = -1
				}
			}
			m := newKernelMatrix(d.X, d.MaxIndex, s, k, 1<<16, threads)
			for _, i := range []int{0, 17, 269} {
				col := m.column(i, d.Len())
				for j := 0; j < d.Len(); j++ {
					want := float64(s[i]) * float64(s[j]) * k.Eval(d.X[i], d.X[j])
					require.InDelta(t, want, float64(col[j]), 1e-6*math.Max(1, math.Abs(want)), "%v col %d row %d", k.Type, i, j)
				}
			}
			m.close()
		}
	}
}

// The LRU cache returns columns intact after evictions and swaps.
func TestCacheSwapAndEviction(t *testing.T) {
	d := loadTestData(t, "heart_scale")
	l := d.Len()
	s := make([]int8, l)
	for i := range s {
		s[i] = 1
	}
	k := Kernel{Type: RBF, Gamma: 0.1}
	m := newKernelMatrix(d.X, d.MaxIndex, s, k, 1, 1) // minimum cache: 2 columns
	perm := make([]int, l)
	for i := range perm {
		perm[i] = i
	}
	r := newRand(4)
	for step := 0; step < 400; step++ {
		if step%3 == 0 {
			a, b := r.IntN(l), r.IntN(l)
			m.swap(a, b)
			perm[a], perm[b] = perm[b], perm[a]
		}
		i := r.IntN(l)
		n := 1 + r.IntN(l)
		col := m.column(i, n)
		for j := 0; j < n; j += 11 {
			want := float32(k.Eval(d.X[perm[i]], d.X[perm[j]]))
			require.InDelta(t, want, col[j], 1e-6, "step %d", step)
		}
	}
}
