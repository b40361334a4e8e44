// Package metrics computes the classification and regression metrics used by
// the GLUE benchmark (accuracy, binary F1, Matthews correlation, Pearson and
// Spearman correlation) and the per-task and average GLUE scores as papers
// report them.
//
// All functions are pure Go and allocate only what their results need. They
// return an error (prefixed "metrics:") on empty or mismatched inputs instead
// of panicking. Metrics are returned as fractions in [0, 1] (or [-1, 1] for
// correlations); the GLUE score functions scale by 100.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrEmpty is returned (wrapped) when a metric is asked of zero examples.
var ErrEmpty = errors.New("metrics: no examples")

func checkLen(n1, n2 int) error {
	if n1 != n2 {
		return fmt.Errorf("metrics: %d predictions but %d gold labels", n1, n2)
	}
	if n1 == 0 {
		return ErrEmpty
	}
	return nil
}

// Accuracy returns the fraction of positions where pred[i] == gold[i].
func Accuracy(pred, gold []int) (float64, error) {
	if err := checkLen(len(pred), len(gold)); err != nil {
		return 0, err
	}
	var n int
	for i := range pred {
		if pred[i] == gold[i] {
			n++
		}
	}
	return float64(n) / float64(len(pred)), nil
}

// Confusion holds the counts of a binary confusion matrix with class 1 as the
// positive class.
type Confusion struct {
	TP, FP, TN, FN int
}

// BinaryConfusion counts true/false positives/negatives with class 1 as the
// positive class. Every label must be 0 or 1.
func BinaryConfusion(pred, gold []int) (Confusion, error) {
	var c Confusion
	if err := checkLen(len(pred), len(gold)); err != nil {
		return c, err
	}
	for i := range pred {
		p, g := pred[i], gold[i]
		if (p != 0 && p != 1) || (g != 0 && g != 1) {
			return Confusion{}, fmt.Errorf("metrics: binary metric needs labels 0 or 1, got prediction %d and gold %d at index %d", p, g, i)
		}
		switch {
		case p == 1 && g == 1:
			c.TP++
		case p == 1 && g == 0:
			c.FP++
		case p == 0 && g == 0:
			c.TN++
		default:
			c.FN++
		}
	}
	return c, nil
}

// F1 returns the binary F1 score with class 1 as the positive class:
// 2·TP / (2·TP + FP + FN). As in scikit-learn (zero_division=0), it is 0 when
// there are neither predicted nor true positives. Labels must be 0 or 1.
func F1(pred, gold []int) (float64, error) {
	c, err := BinaryConfusion(pred, gold)
	if err != nil {
		return 0, err
	}
	d := 2*c.TP + c.FP + c.FN
	if d == 0 {
		return 0, nil
	}
	return float64(2*c.TP) / float64(d), nil
}

// MatthewsCorr returns the Matthews correlation coefficient of the predictions,
// the multi-class generalisation (Gorodkin's R_K, as scikit-learn's
// matthews_corrcoef computes it), which equals the usual binary formula
// (TP·TN − FP·FN)/sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) for two classes. It is 0
// when the denominator is 0 (for example when all predictions are one class),
// as in scikit-learn. Labels may be any integers.
func MatthewsCorr(pred, gold []int) (float64, error) {
	if err := checkLen(len(pred), len(gold)); err != nil {
		return 0, err
	}
	// Map labels to dense indices.
	idx := map[int]int{}
	for _, v := range gold {
		if _, ok := idx[v]; !ok {
			idx[v] = len(idx)
		}
	}
	for _, v := range pred {
		if _, ok := idx[v]; !ok {
			idx[v] = len(idx)
		}
	}
	k := len(idx)
	tk := make([]float64, k) // true count per class
	pk := make([]float64, k) // predicted count per class
	var correct float64
	for i := range pred {
		tk[idx[gold[i]]]++
		pk[idx[pred[i]]]++
		if pred[i] == gold[i] {
			correct++
		}
	}
	s := float64(len(pred))
	var tp, tt, pp float64
	for j := 0; j < k; j++ {
		tp += tk[j] * pk[j]
		tt += tk[j] * tk[j]
		pp += pk[j] * pk[j]
	}
	num := correct*s - tp
	den := math.Sqrt(s*s-pp) * math.Sqrt(s*s-tt)
	if den == 0 {
		return 0, nil
	}
	return num / den, nil
}

func checkFinite(name string, x []float64) error {
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metrics: %s[%d] is %v", name, i, v)
		}
	}
	return nil
}

// Pearson returns Pearson's correlation coefficient of x and y. It returns
// NaN (and no error) when either input is constant, where the correlation is
// undefined (scipy does the same); it returns an error on length mismatch,
// fewer than two values, or non-finite values.
func Pearson(x, y []float64) (float64, error) {
	if err := checkLen(len(x), len(y)); err != nil {
		return 0, err
	}
	if len(x) < 2 {
		return 0, fmt.Errorf("metrics: correlation needs at least 2 values, got %d", len(x))
	}
	if err := checkFinite("x", x); err != nil {
		return 0, err
	}
	if err := checkFinite("y", y); err != nil {
		return 0, err
	}
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN(), nil
	}
	r := sxy / (math.Sqrt(sxx) * math.Sqrt(syy))
	// Guard against rounding just outside [-1, 1].
	return math.Max(-1, math.Min(1, r)), nil
}

// Ranks returns the 1-based ranks of x in ascending order; tied values get the
// average of the ranks they span (scipy.stats.rankdata's "average" method). x must
// not contain NaN.
func Ranks(x []float64) []float64 {
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return x[order[a]] < x[order[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && x[order[j]] == x[order[i]] {
			j++
		}
		// Positions i..j-1 (0-based) share ranks i+1..j; their mean is (i+1+j)/2.
		avg := float64(i+1+j) / 2
		for t := i; t < j; t++ {
			r[order[t]] = avg
		}
		i = j
	}
	return r
}

// Spearman returns Spearman's rank correlation of x and y: the Pearson
// correlation of their ranks, with ties given average ranks. It returns NaN
// when either input is constant, like Pearson.
func Spearman(x, y []float64) (float64, error) {
	if err := checkLen(len(x), len(y)); err != nil {
		return 0, err
	}
	if err := checkFinite("x", x); err != nil {
		return 0, err
	}
	if err := checkFinite("y", y); err != nil {
		return 0, err
	}
	return Pearson(Ranks(x), Ranks(y))
}
