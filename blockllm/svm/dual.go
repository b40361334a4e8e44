package svm

import (
	"fmt"
	"math"
)

// kernelQuadratic exposes K (not y-signed) through a kernelMatrix as a
// Quadratic for Solve; columns come from the float32 LRU cache.
type kernelQuadratic struct {
	m *kernelMatrix
	n int
}

func (q *kernelQuadratic) Dim() int           { return q.n }
func (q *kernelQuadratic) Diag(i int) float64 { return q.m.qd[i] }
func (q *kernelQuadratic) KernelEvals() int64 { return q.m.evals.Load() }
func (q *kernelQuadratic) AddColumn(dst []float64, j int, scale float64) {
	col := q.m.column(j, q.n)[:len(dst)]
	for k := range dst {
		dst[k] += scale * float64(col[k])
	}
}

// SVMDual is the C-SVC dual of a binary problem in the variables x = y*alpha:
// min 1/2 x'Kx - y'x subject to sum(x) = 0 and x_i in [min(0, y_i C_i),
// max(0, y_i C_i)], with kernel columns from a float32 LRU cache.
type SVMDual struct {
	// Problem is ready for Solve (Quad, Linear = -y, bounds, Gamma 0).
	Problem Problem
	Y       []int8
	m       *kernelMatrix
}

// NewSVMDual builds the dual of the binary problem (labels > 0 are +1) with
// costs Cp for the positive and Cn for the negative class, a kernel cache of
// cacheMB megabytes and kernel columns computed on threads goroutines.
// Close releases its worker goroutines.
func NewSVMDual(d *Dataset, k Kernel, Cp, Cn, cacheMB float64, threads int) (*SVMDual, error) {
	if d == nil || d.Len() < 2 {
		return nil, fmt.Errorf("svm: NewSVMDual: need at least 2 rows")
	}
	if err := k.validate(); err != nil {
		return nil, err
	}
	l := d.Len()
	y := make([]int8, l)
	ones := make([]int8, l)
	lin := make([]float64, l)
	lo := make([]float64, l)
	up := make([]float64, l)
	for i := range y {
		ones[i] = 1
		if d.Y[i] > 0 {
			y[i] = 1
			up[i] = Cp
		} else {
			y[i] = -1
			lo[i] = -Cn
		}
		lin[i] = -float64(y[i])
	}
	m := newKernelMatrix(d.X, d.MaxIndex, ones, k, int64(cacheMB*(1<<20)), threads)
	q := &kernelQuadratic{m: m, n: l}
	return &SVMDual{Problem: Problem{Quad: q, Linear: lin, Lower: lo, Upper: up}, Y: y, m: m}, nil
}

// Close releases the kernel worker goroutines.
func (s *SVMDual) Close() { s.m.close() }

// KernelEvals returns the kernel entries computed so far.
func (s *SVMDual) KernelEvals() int64 { return s.m.evals.Load() }

// Rho returns LIBSVM's rho for a solution x with gradient g = Kx - y
// (calculate_rho in LIBSVM's variables alpha = y*x, G = y*g).
func (s *SVMDual) Rho(x, g []float64) float64 {
	nrFree := 0
	ub, lb, sumFree := math.Inf(1), math.Inf(-1), 0.0
	for i := range x {
		yi := float64(s.Y[i])
		a := yi * x[i]
		C := s.Problem.Upper[i]
		if yi < 0 {
			C = -s.Problem.Lower[i]
		}
		yG := g[i] // y_i * G_i = y_i * y_i * g_i
		switch {
		case a >= C:
			if yi < 0 {
				ub = math.Min(ub, yG)
			} else {
				lb = math.Max(lb, yG)
			}
		case a <= 0:
			if yi > 0 {
				ub = math.Min(ub, yG)
			} else {
				lb = math.Max(lb, yG)
			}
		default:
			nrFree++
			sumFree += yG
		}
	}
	if nrFree > 0 {
		return sumFree / float64(nrFree)
	}
	return (ub + lb) / 2
}
