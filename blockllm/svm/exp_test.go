package svm

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFastExpAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	maxUlp := 0.0
	for k := 0; k < 200000; k++ {
		x := -40 * r.Float64()
		if k%4 == 0 {
			x = (r.Float64() - 0.5) * 1400
		}
		got, want := fastExp(x), math.Exp(x)
		if want == 0 {
			if got != 0 {
				t.Fatalf("fastExp(%v) = %v, want 0", x, got)
			}
			continue
		}
		ulp := math.Abs(got-want) / (math.Nextafter(want, math.Inf(1)) - want)
		maxUlp = math.Max(maxUlp, ulp)
	}
	if maxUlp > 2 {
		t.Fatalf("max error %v ulp, want <= 2", maxUlp)
	}
	for _, x := range []float64{0, -0, 1, -1, 709.7, -745.2, -800, math.Inf(-1), math.Inf(1)} {
		if got, want := fastExp(x), math.Exp(x); !(got == want || math.Abs(got-want) <= 2e-16*want) {
			t.Errorf("fastExp(%v) = %v, want %v", x, got, want)
		}
	}
	if !math.IsNaN(fastExp(math.NaN())) {
		t.Error("fastExp(NaN) not NaN")
	}
}

var sinkF float64

func BenchmarkExpMath(b *testing.B) {
	s := 0.0
	for i := 0; i < b.N; i++ {
		s += math.Exp(-float64(i&1023) * 0.01)
	}
	sinkF = s
}

func BenchmarkExpFast(b *testing.B) {
	s := 0.0
	for i := 0; i < b.N; i++ {
		s += fastExp(-float64(i&1023) * 0.01)
	}
	sinkF = s
}
