package metrics

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The expected values below were computed by hand (the working is in the
// comments) and, for the irrational ones, evaluated with python3's math module.

func TestAccuracyF1MCCBinary(t *testing.T) {
	// i:     0 1 2 3 4 5 6 7
	pred := []int{1, 1, 1, 0, 0, 0, 1, 0}
	gold := []int{1, 1, 0, 0, 0, 1, 1, 0}
	// TP = {0,1,6} = 3, FP = {2} = 1, TN = {3,4,7} = 3, FN = {5} = 1.
	c, err := BinaryConfusion(pred, gold)
	require.NoError(t, err)
	assert.Equal(t, Confusion{TP: 3, FP: 1, TN: 3, FN: 1}, c)

	acc, err := Accuracy(pred, gold)
	require.NoError(t, err)
	assert.InDelta(t, 6.0/8, acc, 1e-15)

	// F1 = 2TP/(2TP+FP+FN) = 6/8.
	f1, err := F1(pred, gold)
	require.NoError(t, err)
	assert.InDelta(t, 0.75, f1, 1e-15)

	// MCC = (TP·TN − FP·FN)/sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (9−1)/sqrt(4·4·4·4) = 0.5.
	mcc, err := MatthewsCorr(pred, gold)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, mcc, 1e-15)
}

func TestMatthewsCorrReference(t *testing.T) {
	// scikit-learn's documented example for matthews_corrcoef:
	// y_true = [+1, +1, +1, -1], y_pred = [+1, -1, +1, +1] gives -0.33...
	// (TP=2, FN=1, FP=1, TN=0: (0−1)/sqrt(3·3·1·1) = −1/3).
	mcc, err := MatthewsCorr([]int{1, -1, 1, 1}, []int{1, 1, 1, -1})
	require.NoError(t, err)
	assert.InDelta(t, -1.0/3, mcc, 1e-15)

	// Three classes, by Gorodkin's formula: gold [0 0 1 1 2 2], pred [0 1 1 2 2 0];
	// s=6 samples, c=3 correct, t_k=p_k=[2 2 2]:
	// (c·s − Σ t_k p_k)/sqrt((s² − Σ p_k²)(s² − Σ t_k²)) = (18−12)/sqrt(24·24) = 0.25.
	mcc, err = MatthewsCorr([]int{0, 1, 1, 2, 2, 0}, []int{0, 0, 1, 1, 2, 2})
	require.NoError(t, err)
	assert.InDelta(t, 0.25, mcc, 1e-15)

	// Perfect and inverted predictions.
	mcc, err = MatthewsCorr([]int{0, 1, 0, 1}, []int{0, 1, 0, 1})
	require.NoError(t, err)
	assert.InDelta(t, 1, mcc, 1e-15)
	mcc, err = MatthewsCorr([]int{1, 0, 1, 0}, []int{0, 1, 0, 1})
	require.NoError(t, err)
	assert.InDelta(t, -1, mcc, 1e-15)

	// Constant predictions: the denominator is 0 and MCC is defined as 0.
	mcc, err = MatthewsCorr([]int{1, 1, 1, 1}, []int{0, 1, 0, 1})
	require.NoError(t, err)
	assert.Equal(t, 0.0, mcc)
}

func TestF1Edges(t *testing.T) {
	// No positives at all: 0 (scikit-learn's zero_division=0).
	f1, err := F1([]int{0, 0}, []int{0, 0})
	require.NoError(t, err)
	assert.Equal(t, 0.0, f1)
	_, err = F1([]int{0, 2}, []int{0, 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "index 1")
}

func TestLengthErrors(t *testing.T) {
	_, err := Accuracy([]int{1}, []int{1, 0})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "metrics: 1 predictions but 2 gold labels")
	_, err = Accuracy(nil, nil)
	assert.True(t, errors.Is(err, ErrEmpty))
	_, err = Pearson([]float64{1}, []float64{2})
	require.Error(t, err)
	_, err = Pearson([]float64{1, math.NaN()}, []float64{2, 3})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "x[1]")
}

func TestPearsonSpearman(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5}
	y := []float64{2, 4, 5, 4, 5}
	// Pearson: dx=[-2 -1 0 1 2], dy=[-2 0 1 0 1]; Sxy=6, Sxx=10, Syy=6; r=6/sqrt(60).
	p, err := Pearson(x, y)
	require.NoError(t, err)
	assert.InDelta(t, 0.7745966692414834, p, 1e-15)

	// Spearman: ranks(y) = [1 2.5 4.5 2.5 4.5] (ties averaged), ranks(x)=[1..5];
	// Sxy=7, Sxx=10, Syy=9; rho=7/sqrt(90).
	assert.Equal(t, []float64{1, 2.5, 4.5, 2.5, 4.5}, Ranks(y))
	s, err := Spearman(x, y)
	require.NoError(t, err)
	assert.InDelta(t, 0.7378647873726218, s, 1e-15)

	// Spearman is invariant to monotone transforms; Pearson is not.
	z := []float64{1, 8, 27, 64, 125}
	s, err = Spearman(z, x)
	require.NoError(t, err)
	assert.InDelta(t, 1, s, 1e-15)
	p, err = Pearson(z, x)
	require.NoError(t, err)
	assert.Less(t, p, 0.99)

	// Constant input: undefined, NaN.
	p, err = Pearson([]float64{1, 1, 1}, []float64{1, 2, 3})
	require.NoError(t, err)
	assert.True(t, math.IsNaN(p))
}

func TestRanksTies(t *testing.T) {
	// scipy.stats.rankdata([0, 2, 3, 2]) = [1, 2.5, 4, 2.5] (its documented example).
	assert.Equal(t, []float64{1, 2.5, 4, 2.5}, Ranks([]float64{0, 2, 3, 2}))
	// All equal: everyone gets (1+n)/2.
	assert.Equal(t, []float64{2, 2, 2}, Ranks([]float64{7, 7, 7}))
}

func TestCanonicalTask(t *testing.T) {
	for in, want := range map[string]string{
		"CoLA": "cola", "SST-2": "sst2", "sst2": "sst2", "STS-B": "stsb", "MNLI": "mnli",
		"mnli-mm": "mnli_mismatched", "MNLI-m": "mnli_matched", "wnli": "wnli",
	} {
		got, err := CanonicalTask(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := CanonicalTask("squad")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"squad"`)
	assert.True(t, IsRegression("STS-B"))
	assert.False(t, IsRegression("cola"))
	m, err := TaskMetrics("qqp")
	require.NoError(t, err)
	assert.Equal(t, []string{MetricF1, MetricAccuracy}, m)
}

func TestScore(t *testing.T) {
	pred := []float64{1, 1, 1, 0, 0, 0, 1, 0}
	gold := []float64{1, 1, 0, 0, 0, 1, 1, 0}
	// MRPC: mean of F1 (75) and accuracy (75).
	s, err := Score("MRPC", pred, gold)
	require.NoError(t, err)
	assert.Equal(t, "mrpc", s.Task)
	assert.Equal(t, 8, s.N)
	assert.InDelta(t, 75, s.Metrics[MetricF1], 1e-12)
	assert.InDelta(t, 75, s.Metrics[MetricAccuracy], 1e-12)
	assert.InDelta(t, 75, s.Score, 1e-12)
	assert.Equal(t, "mrpc 75.00 (f1 75.00, accuracy 75.00)", s.String())

	// CoLA: MCC 0.5 → 50.
	s, err = Score("cola", pred, gold)
	require.NoError(t, err)
	assert.InDelta(t, 50, s.Score, 1e-12)
	assert.Equal(t, "cola 50.00", s.String())

	// QQP with different F1 and accuracy: pred [1 1 0 0], gold [1 0 0 1]:
	// TP=1 FP=1 FN=1 TN=1 → F1 = 2/4 = 50, acc 50; change pred[3]=1 →
	// TP=2 FP=1 FN=0 TN=1 → F1 = 4/5 = 80, acc = 75, score 77.5.
	s, err = Score("qqp", []float64{1, 1, 0, 1}, []float64{1, 0, 0, 1})
	require.NoError(t, err)
	assert.InDelta(t, 80, s.Metrics[MetricF1], 1e-12)
	assert.InDelta(t, 75, s.Metrics[MetricAccuracy], 1e-12)
	assert.InDelta(t, 77.5, s.Score, 1e-12)

	// STS-B: mean of Pearson and Spearman from TestPearsonSpearman, ×100.
	s, err = Score("stsb", []float64{1, 2, 3, 4, 5}, []float64{2, 4, 5, 4, 5})
	require.NoError(t, err)
	assert.InDelta(t, 77.45966692414834, s.Metrics[MetricPearson], 1e-12)
	assert.InDelta(t, 73.78647873726218, s.Metrics[MetricSpearman], 1e-12)
	assert.InDelta(t, (77.45966692414834+73.78647873726218)/2, s.Score, 1e-12)

	// MNLI, three classes: accuracy.
	s, err = Score("mnli_matched", []float64{0, 1, 2, 2}, []float64{0, 1, 2, 1})
	require.NoError(t, err)
	assert.InDelta(t, 75, s.Score, 1e-12)

	// Non-integer class predictions are rejected.
	_, err = Score("sst2", []float64{0.5}, []float64{1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pred[0]")
	_, err = Score("rte", []float64{1}, []float64{1, 0})
	require.Error(t, err)
}

func TestAverage(t *testing.T) {
	scores := []TaskScore{
		{Task: "cola", Score: 50},
		{Task: "sst2", Score: 90},
		{Task: "mnli_matched", Score: 80},
		{Task: "mnli_mismatched", Score: 82},
	}
	// MNLI counts once as (80+82)/2 = 81; (50+90+81)/3 = 73.666...
	avg, err := Average(scores)
	require.NoError(t, err)
	assert.InDelta(t, 221.0/3, avg, 1e-12)

	_, err = Average(append(scores, TaskScore{Task: "sst2", Score: 1}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sst2 appears twice")
	_, err = Average(append(scores, TaskScore{Task: "mnli", Score: 1}))
	require.Error(t, err)
	_, err = Average(nil)
	assert.True(t, errors.Is(err, ErrEmpty))
}
