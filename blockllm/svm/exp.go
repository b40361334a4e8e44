package svm

import "math"

// Fast exp for kernel columns: x = k ln2/128 + r with |r| <= ln2/256, then
// exp(x) = 2^(k/128) exp(r) with a 2^(j/128) table and a degree-5
// polynomial. The error is about 1 ulp (float64); kernel columns are then
// rounded to float32, so the cached values almost always equal those of
// LIBSVM's libm exp.
const (
	expN       = 128
	expInvLn2N = expN / math.Ln2
	expLn2HiN  = 0x1.62e42fefa0000p-8  // high part of ln2/128
	expLn2LoN  = 0x1.cf79abc9e3b3ap-47 // low part of ln2/128
	expShift   = 0x1.8p52
)

var expTab = func() [expN]float64 {
	var t [expN]float64
	for j := range t {
		t[j] = math.Exp2(float64(j) / expN)
	}
	return t
}()

func fastExp(x float64) float64 {
	if !(x > -708 && x < 709) {
		return math.Exp(x)
	}
	// k = round(x * N / ln2)
	kd := x*expInvLn2N + expShift
	ki := int64(math.Float64bits(kd) - math.Float64bits(expShift))
	kd -= expShift
	r := (x - kd*expLn2HiN) - kd*expLn2LoN
	j := ki & (expN - 1)
	e := (ki - j) >> 7 // floor(k/128)
	// exp(r) - 1 by Horner, degree 5 Taylor (|r| < 0.0028: error < 1e-19).
	r2 := r * r
	p := r + r2*(0.5+r*(1.0/6+r*(1.0/24+r*(1.0/120))))
	t := expTab[j]
	v := t + t*p
	// Scale by 2^e; e in [-1022, 1023] here except near the ends.
	if e < -1021 || e > 1022 {
		return math.Ldexp(v, int(e))
	}
	return v * math.Float64frombits(uint64(e+1023)<<52)
}

// tanhC is tanh by fdlibm's formula (the one of the C library's tanh):
// 1 - 2/(expm1(2|x|) + 2) for |x| >= 1, -t/(t + 2) with t = expm1(-2|x|)
// below, on Go's fdlibm expm1. It matches glibc's tanh to the last bit far
// more often than math.Tanh does (all but about 0.04% of arguments against
// 16%), so sigmoid-kernel models come out as LIBSVM's.
func tanhC(x float64) float64 {
	ax := math.Abs(x)
	var z float64
	switch {
	case math.IsNaN(x):
		return x
	case ax >= 22:
		z = 1
	case ax < 0x1p-55:
		return x * (1 + x)
	case ax >= 1:
		t := math.Expm1(2 * ax)
		z = 1 - 2/(t+2)
	default:
		t := math.Expm1(-2 * ax)
		z = -t / (t + 2)
	}
	if x < 0 {
		return -z
	}
	return z
}
