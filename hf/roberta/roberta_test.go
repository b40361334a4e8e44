package roberta

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

const tinyDir = "../../testdata/hf/roberta-tiny-sst2"

func TestMain(m *testing.M) {
	if err := torch.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	torch.SetNumThreads(0)
	os.Exit(m.Run())
}

func batch(s *torch.Scope) *nn.Batch {
	// two rows, the second right-padded with pad id 1
	return &nn.Batch{
		InputIDs:      s.FromInt64([]int64{0, 5, 9, 17, 2, 0, 33, 2, 1, 1}, 2, 5),
		AttentionMask: s.FromInt64([]int64{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 2, 5),
	}
}

func TestRoundTripAndPadding(t *testing.T) {
	m, err := Load(tinyDir, Options{})
	require.NoError(t, err)
	defer m.Close()
	assert.Empty(t, m.NewlyInitialized)
	s := torch.NewScope()
	defer s.Close()
	out, err := m.Forward(s, batch(s), false)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 2}, out.Logits.Shape())
	// padding does not change the real tokens' result: row 2 alone, unpadded
	alone, err := m.Forward(s, &nn.Batch{InputIDs: s.FromInt64([]int64{0, 33, 2}, 1, 3)}, false)
	require.NoError(t, err)
	lv := out.Logits.Float64s()
	for i, v := range alone.Logits.Float64s() {
		assert.InDelta(t, v, lv[2+i], 1e-5)
	}
	dir := t.TempDir()
	require.NoError(t, m.Save(dir))
	assert.FileExists(t, filepath.Join(dir, "tokenizer.json"))
	m2, err := Load(dir, Options{})
	require.NoError(t, err)
	defer m2.Close()
	for _, p := range m.Parameters() {
		assert.Equal(t, p.T.Bytes(), m2.Get(p.Name).T.Bytes(), p.Name)
	}
	out2, err := m2.Forward(s, batch(s), false)
	require.NoError(t, err)
	assert.Equal(t, lv, out2.Logits.Float64s())
}

func TestClassificationLossAndMoreLabels(t *testing.T) {
	// five labels: a new head is initialised (as transformers does for roberta-base)
	m, err := Load(tinyDir, Options{NumLabels: 5, Seed: 3})
	require.NoError(t, err)
	defer m.Close()
	assert.ElementsMatch(t, []string{"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"}, m.NewlyInitialized)
	assert.Equal(t, 5, m.NumLabels())
	s := torch.NewScope()
	defer s.Close()
	b := batch(s)
	b.Labels = s.FromInt64([]int64{4, 1}, 2)
	out, err := m.Forward(s, b, false)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 5}, out.Logits.Shape())
	lg := out.Logits.Float64s()
	want := 0.0
	for r, y := range []int{4, 1} {
		row := lg[r*5 : r*5+5]
		z := 0.0
		for _, x := range row {
			z += math.Exp(x)
		}
		want += -(row[y] - math.Log(z))
	}
	assert.InDelta(t, want/2, out.Loss.Item(), 1e-5)
	// the encoder weights are still the checkpoint's
	ref, _ := Load(tinyDir, Options{})
	defer ref.Close()
	assert.Equal(t, ref.Get("roberta.encoder.layer.1.output.dense.weight").T.Bytes(), m.Get("roberta.encoder.layer.1.output.dense.weight").T.Bytes())
	assert.True(t, m.Get("classifier.out_proj.weight").Head)
}

func TestRegressionHead(t *testing.T) {
	c, err := config.LoadRoberta(tinyDir)
	require.NoError(t, err)
	c.SetNumLabels(1)
	m, err := New(c, Options{}, 7)
	require.NoError(t, err)
	defer m.Close()
	assert.True(t, m.Cfg.IsRegression() || m.NumLabels() == 1)
	s := torch.NewScope()
	defer s.Close()
	b := batch(s)
	b.Labels = s.FromFloat32([]float32{0.5, 3.25}, 2)
	out, err := m.Forward(s, b, false)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 1}, out.Logits.Shape())
	lg := out.Logits.Float64s()
	want := (math.Pow(lg[0]-0.5, 2) + math.Pow(lg[1]-3.25, 2)) / 2
	assert.InDelta(t, want, out.Loss.Item(), 1e-5)
	// regression models save and load with num_labels 1
	dir := t.TempDir()
	require.NoError(t, m.Save(dir))
	m2, err := Load(dir, Options{})
	require.NoError(t, err)
	defer m2.Close()
	assert.Equal(t, 1, m2.NumLabels())
	assert.Empty(t, m2.NewlyInitialized)
}

// TestEncoderOnlyCheckpoint: a RobertaModel checkpoint (no "roberta." prefix, a pooler,
// no head) loads with a new head.
func TestEncoderOnlyCheckpoint(t *testing.T) {
	src, err := safetensors.OpenModel(tinyDir)
	require.NoError(t, err)
	ts, err := src.Tensors()
	require.NoError(t, err)
	defer src.Close() // the tensors' data are views into the mapping
	var out []safetensors.Tensor
	for _, x := range ts {
		if len(x.Name) > 11 && x.Name[:11] == "classifier." {
			continue
		}
		if len(x.Name) > 8 && x.Name[:8] == "roberta." {
			x.Name = x.Name[8:]
		}
		out = append(out, x)
	}
	out = append(out, safetensors.Tensor{Name: "pooler.dense.weight", DType: safetensors.F32, Shape: []int64{64, 64}, Data: make([]byte, 64*64*4)})
	dir := t.TempDir()
	require.NoError(t, safetensors.Save(filepath.Join(dir, "model.safetensors"), out, nil))
	cfg, _ := os.ReadFile(filepath.Join(tinyDir, "config.json"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	m, err := Load(dir, Options{})
	require.NoError(t, err)
	defer m.Close()
	assert.Len(t, m.NewlyInitialized, 4)
	ref, _ := Load(tinyDir, Options{})
	defer ref.Close()
	assert.Equal(t, ref.Get("roberta.embeddings.word_embeddings.weight").T.Bytes(), m.Get("roberta.embeddings.word_embeddings.weight").T.Bytes())
}

func TestDropoutOnlyInTraining(t *testing.T) {
	c, _ := config.LoadRoberta(tinyDir)
	c.HiddenDropoutProb = 0.5
	m, err := New(c, Options{}, 1)
	require.NoError(t, err)
	defer m.Close()
	s := torch.NewScope()
	defer s.Close()
	a, _ := m.Forward(s, batch(s), false)
	b, _ := m.Forward(s, batch(s), false)
	assert.Equal(t, a.Logits.Float64s(), b.Logits.Float64s())
	tr, _ := m.Forward(s, batch(s), true)
	assert.NotEqual(t, a.Logits.Float64s(), tr.Logits.Float64s())
}

// TestNumParamsAndHugeConfig: NumParams counts what the model holds; a configuration
// too large to hold is refused with its size.
func TestNumParamsAndHugeConfig(t *testing.T) {
	m, err := Load(tinyDir, Options{})
	require.NoError(t, err)
	assert.Equal(t, float64(m.NumParams()), m.Cfg.NumParams())
	c := *m.Cfg
	m.Close()
	c.NumHiddenLayers = 10_000_000
	_, err = New(&c, Options{}, 1)
	assert.ErrorContains(t, err, "roberta: the model needs")
}
