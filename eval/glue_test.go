package eval

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval/glue"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/roberta"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

const (
	robertaDir = "../testdata/hf/roberta-tiny-sst2"
	robertaTok = "../testdata/hf/roberta-tiny-tok/tokenizer.json"
)

func loadTok(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(robertaTok)
	require.NoError(t, err)
	return tok
}

func demoDev(t *testing.T) *glue.Dataset {
	t.Helper()
	ds, err := glue.LoadFS(data.DemoGLUE(), data.DemoGLUETask, "dev")
	require.NoError(t, err)
	return ds
}

// TestPredictMatchesUnpadded: batched prediction (sorted by length, padded)
// equals the argmax of each example run alone, in the original order, and
// ScoreGLUE scores it.
func TestPredictMatchesUnpadded(t *testing.T) {
	m, err := roberta.Load(robertaDir, roberta.Options{})
	require.NoError(t, err)
	defer m.Close()
	tok := loadTok(t)
	ds := demoDev(t)
	ds.Examples = ds.Examples[:24]
	ex, err := glue.Encode(tok, ds, 32)
	require.NoError(t, err)
	pred, err := Predict(m, ex, 7, tok.PAD())
	require.NoError(t, err)
	var want []float64
	classes := map[float64]bool{}
	for _, e := range ex {
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			b, err := glue.Collate(s, []glue.Encoded{e}, tok.PAD(), false, false, torch.CPU)
			require.NoError(t, err)
			out, err := m.Forward(s, b, false)
			require.NoError(t, err)
			l := out.Logits.Float64s()
			c := 0.0
			if l[1] > l[0] {
				c = 1
			}
			want = append(want, c)
			classes[c] = true
			return nil
		}))
	}
	assert.Equal(t, want, pred)
	sc, err := ScoreGLUE(m, ds, ex, 5, tok.PAD())
	require.NoError(t, err)
	correct := 0
	for i, p := range pred {
		if p == ds.Examples[i].Label {
			correct++
		}
	}
	assert.InDelta(t, 100*float64(correct)/24, sc.Score, 1e-9)
	assert.Equal(t, "sst2", sc.Task)
}

// TestPredictRegression: a one-output head returns raw scores.
func TestPredictRegression(t *testing.T) {
	m, err := roberta.Load(robertaDir, roberta.Options{NumLabels: 1, Seed: 1})
	require.NoError(t, err)
	defer m.Close()
	ex := []glue.Encoded{{IDs: []int{0, 10, 11, 2}}, {IDs: []int{0, 12, 2}}}
	pred, err := Predict(m, ex, 0, 1)
	require.NoError(t, err)
	var direct []float64
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		b, _ := glue.Collate(s, ex[1:], 1, false, false, torch.CPU)
		out, err := m.Forward(s, b, false)
		direct = out.Logits.Float64s()
		return err
	}))
	assert.InDelta(t, direct[0], pred[1], 1e-5)
	assert.NotEqual(t, pred[0], pred[1])
	var _ nn.Model = m
}
