package data_test

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval/c4"
	"github.com/blockllm/blockllm-go/eval/glue"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readTexts(t *testing.T, r *c4.Reader) []string {
	t.Helper()
	defer r.Close()
	var out []string
	for {
		d, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, d.Text)
	}
}

func TestFortunes(t *testing.T) {
	r, err := c4.OpenFS(data.Fortunes(), []string{data.FortunesTrain}, nil)
	require.NoError(t, err)
	train := readTexts(t, r)
	r, err = c4.OpenFS(data.Fortunes(), []string{data.FortunesValidation}, nil)
	require.NoError(t, err)
	valid := readTexts(t, r)
	assert.Len(t, train, 14381)
	assert.Len(t, valid, 753)
	seen := map[string]bool{}
	var chars int
	for _, s := range train {
		assert.False(t, seen[s], "duplicate %q", s)
		seen[s] = true
		assert.False(t, c4.InValidation(s, 0.05, 0))
		chars += len(s)
	}
	for _, s := range valid {
		assert.False(t, seen[s], "validation text also in train: %q", s)
		assert.True(t, c4.InValidation(s, 0.05, 0))
	}
	t.Logf("train: %d documents, %d bytes of text", len(train), chars)

	// The whole directory, as c4.Open would read a C4 download.
	r, err = c4.OpenFS(data.Fortunes(), []string{"."}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{data.FortunesTrain, data.FortunesValidation}, r.Files())
	r.Close()

	_, err = data.Fortunes().Open("LICENSE")
	require.NoError(t, err)
}

func TestDemoGLUE(t *testing.T) {
	tr, err := glue.LoadFS(data.DemoGLUE(), data.DemoGLUETask, "train")
	require.NoError(t, err)
	dev, err := glue.LoadFS(data.DemoGLUE(), data.DemoGLUETask, "dev")
	require.NoError(t, err)
	assert.Equal(t, 3222, tr.Len())
	assert.Equal(t, 400, dev.Len())
	assert.True(t, tr.Labeled && dev.Labeled)
	inTrain := map[string]bool{}
	for _, e := range tr.Examples {
		inTrain[e.TextA] = true
	}
	for _, ds := range []*glue.Dataset{tr, dev} {
		assert.Less(t, ds.Majority(), 0.56, "balanced classes")
		for _, e := range ds.Examples {
			assert.LessOrEqual(t, len(e.TextA), 200)
			assert.GreaterOrEqual(t, len(e.TextA), 20)
			assert.NotContains(t, e.TextA, "\t")
			assert.NotContains(t, e.TextA, "\n")
		}
	}
	for _, e := range dev.Examples {
		assert.False(t, inTrain[e.TextA], "dev sentence in train: %q", e.TextA)
	}

	dir, cleanup, err := data.DemoGLUEDir()
	require.NoError(t, err)
	ds, err := glue.Load(dir, "sst2", "validation")
	require.NoError(t, err)
	assert.Equal(t, dev.Examples, ds.Examples)
	assert.Equal(t, filepath.Join(dir, "SST-2", "dev.tsv"), ds.Files[0])
	cleanup()
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err))

	fdir, cleanup, err := data.FortunesDir()
	require.NoError(t, err)
	defer cleanup()
	r, err := c4.Open([]string{filepath.Join(fdir, "c4-validation.*")}, nil)
	require.NoError(t, err)
	assert.Len(t, readTexts(t, r), 753)
}

var word = regexp.MustCompile(`[a-z']+`)

// TestDemoGLUELearnable checks that the demo task has a learnable signal: a
// multinomial naive Bayes classifier on lower-cased words (add-one
// smoothing) trained on train.tsv must beat the majority class on dev.tsv by
// a wide margin.
func TestDemoGLUELearnable(t *testing.T) {
	tr, err := glue.LoadFS(data.DemoGLUE(), "sst2", "train")
	require.NoError(t, err)
	dev, err := glue.LoadFS(data.DemoGLUE(), "sst2", "dev")
	require.NoError(t, err)
	var counts [2]map[string]float64
	var totals, docs [2]float64
	vocab := map[string]bool{}
	for c := range counts {
		counts[c] = map[string]float64{}
	}
	for _, e := range tr.Examples {
		c := e.Class()
		docs[c]++
		for _, w := range word.FindAllString(strings.ToLower(e.TextA), -1) {
			counts[c][w]++
			totals[c]++
			vocab[w] = true
		}
	}
	v := float64(len(vocab))
	pred := make([]float64, dev.Len())
	for i, e := range dev.Examples {
		var score [2]float64
		for c := range score {
			score[c] = math.Log(docs[c] / (docs[0] + docs[1]))
			for _, w := range word.FindAllString(strings.ToLower(e.TextA), -1) {
				score[c] += math.Log((counts[c][w] + 1) / (totals[c] + v))
			}
		}
		if score[1] > score[0] {
			pred[i] = 1
		}
	}
	s, err := dev.Score(pred)
	require.NoError(t, err)
	t.Logf("naive Bayes dev accuracy %.2f%%, majority class %.2f%%", s.Score, 100*dev.Majority())
	assert.Greater(t, s.Score, 100*dev.Majority()+25)
}
