package llama

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

const tinyDir = "../../testdata/hf/llama-tiny"

func TestMain(m *testing.M) {
	if err := torch.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	torch.SetNumThreads(0)
	os.Exit(m.Run())
}

func tinyConfig(t *testing.T) *config.LlamaConfig {
	c, err := config.LoadLlama(tinyDir)
	require.NoError(t, err)
	return c
}

func ids(s *torch.Scope, B, T, V int64, seed uint64) *torch.Tensor {
	g := torch.NewGenerator(seed, torch.CPU)
	defer g.Close()
	return s.RandInt(0, V, []int64{B, T}, torch.CPU, g)
}

func logits(t *testing.T, m *Model, s *torch.Scope, in *torch.Tensor) []float64 {
	out, err := m.Forward(s, &nn.Batch{InputIDs: in}, false)
	require.NoError(t, err)
	return out.Logits.Float64s()
}

func maxDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestSaveLoadRoundTrip: load, save (sharded and not), load again gives identical
// tensors and identical logits; the tokenizer files travel along.
func TestSaveLoadRoundTrip(t *testing.T) {
	for _, dir := range []string{tinyDir, "../../testdata/hf/llama-tiny-bf16-sharded"} {
		for _, shard := range []int64{0, 60_000} {
			t.Run(fmt.Sprintf("%s/shard%d", filepath.Base(dir), shard), func(t *testing.T) {
				m, err := Load(dir, Options{MaxShardBytes: shard})
				require.NoError(t, err)
				defer m.Close()
				out := t.TempDir()
				require.NoError(t, m.Save(out))
				if shard > 0 {
					assert.FileExists(t, filepath.Join(out, "model.safetensors.index.json"))
				} else {
					assert.FileExists(t, filepath.Join(out, "model.safetensors"))
				}
				if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err == nil {
					assert.FileExists(t, filepath.Join(out, "tokenizer.json"))
				}
				m2, err := Load(out, Options{})
				require.NoError(t, err)
				defer m2.Close()
				assert.Equal(t, m.DType, m2.DType)
				for _, p := range m.Parameters() {
					q := m2.Get(p.Name)
					require.NotNil(t, q, p.Name)
					assert.Equal(t, p.T.Bytes(), q.T.Bytes(), p.Name)
				}
				s := torch.NewScope()
				defer s.Close()
				in := ids(s, 2, 7, int64(m.Cfg.VocabSize), 5)
				assert.Equal(t, logits(t, m, s, in), logits(t, m2, s, in))
			})
		}
	}
}

// TestV4Config: a transformers v4 config (top-level rope_theta, torch_dtype) loads the
// same weights and gives the same logits.
func TestV4Config(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(tinyDir, "config.json"))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	delete(m, "rope_parameters")
	delete(m, "dtype")
	m["rope_theta"] = 10000.0
	m["torch_dtype"] = "float32"
	m["rope_scaling"] = nil
	b, _ := json.Marshal(m)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	w, _ := os.ReadFile(filepath.Join(tinyDir, "model.safetensors"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), w, 0o644))
	a, err := Load(tinyDir, Options{})
	require.NoError(t, err)
	defer a.Close()
	v4, err := Load(dir, Options{})
	require.NoError(t, err)
	defer v4.Close()
	s := torch.NewScope()
	defer s.Close()
	in := ids(s, 1, 9, 1024, 2)
	assert.Equal(t, logits(t, a, s, in), logits(t, v4, s, in))
}

// TestRope checks cos/sin against an independent computation from rope_theta, and that
// rope_theta changes the model's output.
func TestRope(t *testing.T) {
	for _, theta := range []float64{10000, 500000} {
		c := tinyConfig(t)
		c.RopeTheta = theta
		m, err := New(c, Options{}, 1)
		require.NoError(t, err)
		s := torch.NewScope()
		cos, sin := m.rope(s, 6, torch.F64)
		hd := c.HeadDim()
		cv, sv := cos.Float64s(), sin.Float64s()
		for p := 0; p < 6; p++ {
			for i := 0; i < hd; i++ {
				f := float64(p) / math.Pow(theta, float64(2*(i%(hd/2)))/float64(hd))
				assert.InDelta(t, math.Cos(f), cv[p*hd+i], 1e-5, "theta %v pos %d i %d", theta, p, i)
				assert.InDelta(t, math.Sin(f), sv[p*hd+i], 1e-5, "theta %v pos %d i %d", theta, p, i)
			}
		}
		s.Close()
		m.Close()
	}
	a, _ := New(tinyConfig(t), Options{}, 1)
	defer a.Close()
	c := tinyConfig(t)
	c.RopeTheta = 500000
	b, _ := New(c, Options{}, 1)
	defer b.Close()
	s := torch.NewScope()
	defer s.Close()
	in := ids(s, 1, 8, 1024, 3)
	assert.Greater(t, maxDiff(logits(t, a, s, in), logits(t, b, s, in)), 1e-4)
}

// TestGroupedQueryAttention: a model with one kv head equals a multi-head model whose
// k/v projections repeat that head's weights for every head.
func TestGroupedQueryAttention(t *testing.T) {
	c1 := tinyConfig(t)
	c1.NumKeyValueHeads = 1
	gqa, err := New(c1, Options{}, 9)
	require.NoError(t, err)
	defer gqa.Close()
	cN := tinyConfig(t)
	cN.NumKeyValueHeads = cN.NumAttentionHeads
	mha, err := New(cN, Options{}, 9)
	require.NoError(t, err)
	defer mha.Close()
	s := torch.NewScope()
	defer s.Close()
	nh := int64(cN.NumAttentionHeads)
	for _, p := range gqa.Parameters() {
		q := mha.Get(p.Name)
		if strings.Contains(p.Name, "k_proj") || strings.Contains(p.Name, "v_proj") {
			// [hd, D] -> [nh*hd, D], the one head repeated
			q.T.CopyFrom(s.In(p.T).Unsqueeze(0).Expand(nh, p.T.Size(0), p.T.Size(1)).Reshape(nh*p.T.Size(0), p.T.Size(1)))
		} else {
			q.T.CopyFrom(p.T)
		}
	}
	in := ids(s, 2, 6, 1024, 4)
	assert.Less(t, maxDiff(logits(t, gqa, s, in), logits(t, mha, s, in)), 1e-5)
}

// TestTiedEmbeddings: lm_head is the embedding matrix; no lm_head key is saved; both uses
// receive gradient.
func TestTiedEmbeddings(t *testing.T) {
	c := tinyConfig(t)
	c.TieWordEmbeddings = true
	m, err := New(c, Options{}, 3)
	require.NoError(t, err)
	defer m.Close()
	assert.Nil(t, m.LMHead)
	s := torch.NewScope()
	defer s.Close()
	in := ids(s, 1, 5, 1024, 8)
	out, err := m.Forward(s, &nn.Batch{InputIDs: in}, false)
	require.NoError(t, err)
	// logits = final hidden @ embed^T: check by computing from the embedding directly
	want := out.Logits.Float64s()
	dir := t.TempDir()
	require.NoError(t, m.Save(dir))
	f, err := safetensors.OpenModel(dir)
	require.NoError(t, err)
	_, has := f.Info("lm_head.weight")
	f.Close()
	assert.False(t, has, "tied checkpoints have no lm_head.weight")
	m2, err := Load(dir, Options{})
	require.NoError(t, err)
	defer m2.Close()
	assert.Equal(t, want, logits(t, m2, s, in))
	// the gradient of embed includes the LM-head use: tokens absent from the input still
	// get gradient through the output projection
	m.Embed.T.SetRequiresGrad(true)
	out, _ = m.Forward(s, &nn.Batch{InputIDs: in}, false)
	out.Loss.Backward()
	g := s.In(m.Embed.T).Grad()
	require.NotNil(t, g)
	used := map[int64]bool{}
	for _, v := range in.Int64s() {
		used[v] = true
	}
	var unused int64
	for unused = 0; used[unused]; unused++ {
	}
	assert.Greater(t, g.Select(0, unused).Norm(2).Item(), 0.0)
}

// TestLossIgnoresPaddingAndLabels: explicit labels with -100, and attention-mask padding.
func TestLossIgnoresPaddingAndLabels(t *testing.T) {
	m, err := Load(tinyDir, Options{})
	require.NoError(t, err)
	defer m.Close()
	s := torch.NewScope()
	defer s.Close()
	in := ids(s, 1, 6, 1024, 11)
	out, err := m.Forward(s, &nn.Batch{InputIDs: in}, false)
	require.NoError(t, err)
	// manual loss from logits
	lg := out.Logits.Float64s()
	idv := in.Int64s()
	V := 1024
	manual := 0.0
	for p := 0; p < 5; p++ {
		row := lg[p*V : (p+1)*V]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, x)
		}
		z := 0.0
		for _, x := range row {
			z += math.Exp(x - mx)
		}
		manual += -(row[idv[p+1]] - mx - math.Log(z))
	}
	assert.InDelta(t, manual/5, out.Loss.Item(), 1e-5)
	// labels -100 on the last two targets: mean over the first three
	lab := append([]int64(nil), idv...)
	lab[4], lab[5] = -100, -100
	out2, err := m.Forward(s, &nn.Batch{InputIDs: in, Labels: s.FromInt64(lab, 1, 6)}, false)
	require.NoError(t, err)
	part := 0.0
	for p := 0; p < 3; p++ {
		row := lg[p*V : (p+1)*V]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, x)
		}
		z := 0.0
		for _, x := range row {
			z += math.Exp(x - mx)
		}
		part += -(row[idv[p+1]] - mx - math.Log(z))
	}
	assert.InDelta(t, part/3, out2.Loss.Item(), 1e-5)
	// right padding: with a mask the real tokens' logits equal the unpadded run's
	padded := append(append([]int64(nil), idv[:4]...), 0, 0)
	mask := s.FromInt64([]int64{1, 1, 1, 1, 0, 0}, 1, 6)
	out3, err := m.Forward(s, &nn.Batch{InputIDs: s.FromInt64(padded, 1, 6), AttentionMask: mask}, false)
	require.NoError(t, err)
	short, err := m.Forward(s, &nn.Batch{InputIDs: s.FromInt64(idv[:4], 1, 4)}, false)
	require.NoError(t, err)
	assert.Less(t, maxDiff(short.Logits.Float64s(), out3.Logits.Float64s()[:4*V]), 1e-5)
}

// TestLoadErrors: every missing, unexpected and mis-shaped key is named in one error;
// .bin checkpoints are refused with a hint; bad configs name the key.
func TestLoadErrors(t *testing.T) {
	src, err := safetensors.OpenModel(tinyDir)
	require.NoError(t, err)
	ts, err := src.Tensors()
	require.NoError(t, err)
	var kept []safetensors.Tensor
	for _, x := range ts {
		switch {
		case x.Name == "model.norm.weight", x.Name == "model.layers.0.mlp.up_proj.weight":
			continue // missing
		case x.Name == "model.layers.1.self_attn.q_proj.weight":
			x.Shape = []int64{32, 128} // mis-shaped, same byte count
		}
		kept = append(kept, x)
	}
	kept = append(kept, safetensors.Tensor{Name: "model.extra.weight", DType: safetensors.F32, Shape: []int64{1}, Data: make([]byte, 4)})
	dir := t.TempDir()
	require.NoError(t, safetensors.Save(filepath.Join(dir, "model.safetensors"), kept, nil))
	cfg, _ := os.ReadFile(filepath.Join(tinyDir, "config.json"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	src.Close()
	_, err = Load(dir, Options{})
	require.Error(t, err)
	for _, want := range []string{"missing keys (2)", "model.norm.weight", "model.layers.0.mlp.up_proj.weight",
		"mis-shaped keys (1)", "model.layers.1.self_attn.q_proj.weight: checkpoint [32 128], model [64 64]",
		"unexpected keys (1)", "model.extra.weight"} {
		assert.Contains(t, err.Error(), want)
	}

	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "config.json"), cfg, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "pytorch_model.bin"), []byte("PK\x03\x04"), 0o644))
	_, err = Load(bin, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pickle")

	bad := t.TempDir()
	badCfg := strings.Replace(string(cfg), `"hidden_size": 64`, `"hidden_size": -4`, 1)
	require.NoError(t, os.WriteFile(filepath.Join(bad, "config.json"), []byte(badCfg), 0o644))
	_, err = Load(bad, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hidden_size")
}

// TestRecomputeAndChunkedLoss: recomputed layers and the chunked loss give the same loss
// and gradients as the plain forward, and hold fewer bytes between forward and backward.
func TestRecomputeAndChunkedLoss(t *testing.T) {
	type result struct {
		loss  float64
		grads map[string][]float64
		held  int64
	}
	run := func(o Options) result {
		m, err := Load(tinyDir, o)
		require.NoError(t, err)
		defer m.Close()
		for _, p := range m.Parameters() {
			p.T.SetRequiresGrad(true)
		}
		s := torch.NewScope()
		defer s.Close()
		in := ids(s, 2, 24, 1024, 21)
		c0, _ := torch.MemStats(torch.CPU)
		out, err := m.Forward(s, &nn.Batch{InputIDs: in}, true)
		require.NoError(t, err)
		c1, _ := torch.MemStats(torch.CPU)
		out.Loss.Backward()
		r := result{loss: out.Loss.Item(), grads: map[string][]float64{}, held: c1 - c0}
		for _, p := range m.Parameters() {
			r.grads[p.Name] = s.In(p.T).Grad().Float64s()
		}
		return r
	}
	plain := run(Options{})
	for _, o := range []Options{{Recompute: true}, {LossChunk: 5}, {Recompute: true, LossChunk: 7}, {RecomputeMLP: true},
		{RecomputeMLP: true, LossChunk: 3}} {
		got := run(o)
		assert.InDelta(t, plain.loss, got.loss, 1e-5, "%+v", o)
		for name, g := range plain.grads {
			assert.InDeltaSlice(t, g, got.grads[name], 1e-5, "%+v %s", o, name)
		}
		t.Logf("%+v: held %d bytes after forward (plain %d)", o, got.held, plain.held)
		assert.Less(t, got.held, plain.held, "%+v holds less", o)
	}
	// a padded MLP (172 -> 192 and 176 wide) is the same function
	for _, o := range []Options{{PadMLP: 64}, {PadMLP: 8, RecomputeMLP: true, LossChunk: 5}} {
		got := run(o)
		assert.InDelta(t, plain.loss, got.loss, 1e-5, "%+v", o)
		for name, g := range plain.grads {
			assert.InDeltaSlice(t, g, got.grads[name], 1e-5, "%+v %s", o, name)
		}
	}
}

// TestChunkedLossUnderHook: with a hook that probes the layers, with or without the LM
// head, the chunked loss gives the same gradient norms as the full loss (the fused loss
// uses the head once, so its probe sees the whole gradient).
func TestChunkedLossUnderHook(t *testing.T) {
	norms := func(chunk int, probeHead bool) ([]float64, bool) {
		m, err := Load(tinyDir, Options{LossChunk: chunk})
		require.NoError(t, err)
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		ps := m.Parameters()
		token := s.Zeros(nil, torch.F32, torch.CPU).SetRequiresGrad(true)
		buf := s.Zeros([]int64{int64(len(ps))}, torch.F64, torch.CPU)
		probes := map[*nn.Param]*torch.Tensor{}
		m.SetHook(func(_ *torch.Scope, p *nn.Param) *torch.Tensor {
			if p.Embed && !probeHead {
				return p.T
			}
			if probes[p] == nil {
				for i, q := range ps {
					if q == p {
						probes[p] = torch.NormProbe(p.T, token, buf, i)
					}
				}
			}
			return probes[p]
		})
		out, err := m.Forward(s, &nn.Batch{InputIDs: ids(s, 2, 20, 1024, 31)}, true)
		require.NoError(t, err)
		out.Loss.Backward()
		return buf.Float64s(), out.Logits == nil
	}
	for _, probeHead := range []bool{false, true} {
		full, wasChunked := norms(0, probeHead)
		assert.False(t, wasChunked)
		chunked, wasChunked := norms(6, probeHead)
		assert.True(t, wasChunked, "chunking stays on (probed head: %v)", probeHead)
		assert.InDeltaSlice(t, full, chunked, 1e-4, "probed head: %v", probeHead) // squared norms near 10, summed in float32
		if probeHead {
			assert.Positive(t, chunked[len(chunked)-1]+chunked[0], "the head's probe saw a gradient")
		}
	}
}

// TestInitOnDevice: New with InitOnDevice draws on BLOCKLLM_DEVICE's generator (the CPU
// draw when that is the CPU), with the initializer's spread, norms at one.
func TestInitOnDevice(t *testing.T) {
	dev, err := torch.DeviceFromEnv()
	require.NoError(t, err)
	c, err := config.LlamaPreset("llama-tiny")
	require.NoError(t, err)
	plain, err := New(c, Options{Device: dev}, 7)
	require.NoError(t, err)
	defer plain.Close()
	fast, err := New(c, Options{Device: dev, InitOnDevice: true}, 7)
	require.NoError(t, err)
	defer fast.Close()
	q := fast.Layers[0].Q.T.Float64s()
	mean, sq := 0.0, 0.0
	for _, v := range q {
		mean += v
		sq += v * v
	}
	mean /= float64(len(q))
	std := math.Sqrt(sq/float64(len(q)) - mean*mean)
	assert.InDelta(t, c.InitializerRange, std, 0.1*c.InitializerRange)
	assert.InDelta(t, 0, mean, 0.1*c.InitializerRange)
	for _, v := range fast.Layers[0].InputNorm.T.Float64s() {
		require.Equal(t, 1.0, v)
	}
	same := assert.ObjectsAreEqual(plain.Layers[0].Q.T.Float64s(), q)
	assert.Equal(t, dev == torch.CPU, same, "device %v: the same draw as the CPU's only on the CPU", dev)
}

// TestNumParamsAndHugeConfig: NumParams counts what the model holds, and configurations
// whose weights cannot fit are refused with their size before anything is allocated.
func TestNumParamsAndHugeConfig(t *testing.T) {
	for _, name := range []string{"llama-tiny", "llama-20m", "llama-60m"} {
		c, err := config.LlamaPreset(name)
		require.NoError(t, err)
		c.VocabSize = 1000
		m, err := New(c, Options{}, 1)
		require.NoError(t, err)
		assert.Equal(t, float64(m.NumParams()), c.NumParams(), name)
		m.Close()
	}
	c, err := config.LlamaPreset("llama-tiny")
	require.NoError(t, err)
	c.NumHiddenLayers = 1_000_000
	_, err = New(c, Options{}, 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "llama: the model needs")
	assert.Contains(t, err.Error(), "for its weights alone")
	assert.Contains(t, err.Error(), "available")
	c, _ = config.LlamaPreset("llama-tiny")
	c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads, c.NumKeyValueHeads = 1<<20, 1<<21, 1<<10, 1<<10
	_, err = New(c, Options{DType: torch.BF16}, 1)
	assert.ErrorContains(t, err, "TiB for its weights alone")
}
