package llama

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

func TestClassifierFromCausalLM(t *testing.T) {
	c, err := LoadClassifier(tinyDir, Options{}, []string{"neg", "neu", "pos"}, 4)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, []string{"score.weight"}, c.NewlyInitialized)
	assert.Nil(t, c.Get("lm_head.weight"), "the LM head is dropped")
	assert.True(t, c.Score.Head)
	lm, err := Load(tinyDir, Options{})
	require.NoError(t, err)
	defer lm.Close()
	assert.Equal(t, lm.Get("model.layers.1.mlp.up_proj.weight").T.Bytes(), c.Get("model.layers.1.mlp.up_proj.weight").T.Bytes())

	s := torch.NewScope()
	defer s.Close()
	// row 0: 5 real tokens; row 1: 3 real tokens then padding
	in := s.FromInt64([]int64{5, 9, 17, 33, 2, 7, 8, 40, 0, 0}, 2, 5)
	mask := s.FromInt64([]int64{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 2, 5)
	out, err := c.Forward(s, &nn.Batch{InputIDs: in, AttentionMask: mask, Labels: s.FromInt64([]int64{2, 0}, 2)}, false)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3}, out.Logits.Shape())
	lg := out.Logits.Float64s()
	// the padded row equals the same tokens run alone (pooled at its last token)
	alone, err := c.Forward(s, &nn.Batch{InputIDs: s.FromInt64([]int64{7, 8, 40}, 1, 3)}, false)
	require.NoError(t, err)
	assert.InDeltaSlice(t, alone.Logits.Float64s(), lg[3:], 1e-5)
	// pooled logits = score(final hidden at the last token)
	h := c.hidden(s, &nn.Batch{InputIDs: s.FromInt64([]int64{5, 9, 17, 33, 2}, 1, 5)}, false)
	want := h.Select(1, 4).Linear(c.Score.T, nil).Float64s()
	assert.InDeltaSlice(t, want, lg[:3], 1e-5)
	// cross-entropy
	ce := 0.0
	for r, y := range []int{2, 0} {
		row := lg[r*3 : r*3+3]
		z := 0.0
		for _, x := range row {
			z += math.Exp(x)
		}
		ce += -(row[y] - math.Log(z))
	}
	assert.InDelta(t, ce/2, out.Loss.Item(), 1e-5)

	// save, load: same labels, same logits, no new parameters
	dir := t.TempDir()
	require.NoError(t, c.Save(dir))
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), "LlamaForSequenceClassification")
	assert.Contains(t, string(raw), `"id2label"`)
	c2, err := LoadClassifier(dir, Options{}, nil, 9)
	require.NoError(t, err)
	defer c2.Close()
	assert.Empty(t, c2.NewlyInitialized)
	assert.Equal(t, []string{"neg", "neu", "pos"}, c2.Labels)
	out2, err := c2.Forward(s, &nn.Batch{InputIDs: in, AttentionMask: mask}, false)
	require.NoError(t, err)
	assert.Equal(t, lg, out2.Logits.Float64s())
	assert.Nil(t, out2.Loss)
}

func TestClassifierRegressionAndPadID(t *testing.T) {
	cfg, err := config.LoadLlama(tinyDir)
	require.NoError(t, err)
	pad := 0
	cfg.PadTokenID = &pad
	c, err := NewClassifier(cfg, Options{}, []string{"score"}, 2)
	require.NoError(t, err)
	defer c.Close()
	s := torch.NewScope()
	defer s.Close()
	// no attention mask: the last token that is not pad_token_id is pooled
	in := s.FromInt64([]int64{5, 9, 17, 0, 0}, 1, 5)
	out, err := c.Forward(s, &nn.Batch{InputIDs: in, Labels: s.FromFloat32([]float32{0.75}, 1)}, false)
	require.NoError(t, err)
	short, err := c.Forward(s, &nn.Batch{InputIDs: s.FromInt64([]int64{5, 9, 17}, 1, 3)}, false)
	require.NoError(t, err)
	assert.InDeltaSlice(t, short.Logits.Float64s(), out.Logits.Float64s(), 1e-5)
	v := out.Logits.Float64s()[0]
	assert.InDelta(t, (v-0.75)*(v-0.75), out.Loss.Item(), 1e-5)
	// one label saves as regression
	dir := t.TempDir()
	require.NoError(t, c.Save(dir))
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	assert.Contains(t, string(raw), `"problem_type": "regression"`)
	_, err = NewClassifier(cfg, Options{}, nil, 1)
	assert.Error(t, err)
}
