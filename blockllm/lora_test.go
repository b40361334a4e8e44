package blockllm

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/roberta"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

// logitsOf is m's evaluation logits on b as float64s.
func logitsOf(t *testing.T, m nn.Model, b *nn.Batch) []float64 {
	t.Helper()
	var out []float64
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		var err error
		torch.NoGrad(func() {
			var o *nn.Output
			if o, err = m.Forward(s, b, false); err == nil {
				out = o.Logits.To(torch.F64).Float64s()
			}
		})
		return err
	}))
	return out
}

func loadLlama(t *testing.T, dt torch.DType) *llama.Model {
	t.Helper()
	m, err := llama.Load(filepath.Join(fixtureRoot(), "llama-tiny"), llama.Options{Device: testDevice, DType: dt})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

func loadRoberta(t *testing.T) *roberta.Model {
	t.Helper()
	m, err := roberta.Load(filepath.Join(fixtureRoot(), "roberta-tiny-sst2"), roberta.Options{Device: testDevice})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

// robertaBatch is 4 labelled sequences of 12 tokens.
func robertaBatch(s *torch.Scope) *nn.Batch {
	ids := make([]int64, 4*12)
	for i := range ids {
		ids[i] = int64(3 + i*7%900)
	}
	return &nn.Batch{InputIDs: s.FromInt64(ids, 4, 12).ToDevice(torch.I64, testDevice),
		Labels: s.FromInt64([]int64{0, 1, 1, 0}, 4).ToDevice(torch.I64, testDevice)}
}

// randomizeB gives every lora_B a nonzero value (after init B is zero and the adapters
// change nothing), drawn from seed.
func randomizeB(t *testing.T, o *LoRA, seed uint64, std float64) {
	t.Helper()
	g := torch.NewGenerator(seed, torch.CPU)
	defer g.Close()
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		for _, x := range o.adapters {
			x.b.T.CopyFrom(s.Randn(x.b.T.Shape(), torch.F32, torch.CPU, g).MulScalar(std))
		}
		return nil
	}))
}

// TestLoRAFirstForwardEqualsBase: adapters start with B = 0, so the adapted model's
// logits equal the base model's bit for bit (Llama f32 and bf16 with dropout in a
// training pass, RoBERTa); A is Kaiming-uniform within 1/sqrt(in); the default targets
// are peft's (q_proj,v_proj; query,value) and only the adapters and heads train.
func TestLoRAFirstForwardEqualsBase(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	for _, dt := range []torch.DType{torch.F32, torch.BF16} {
		m := loadLlama(t, dt)
		b := randomBatch(t, s, m.Config().VocabSize)
		base := logitsOf(t, m, b)
		var baseLoss float64
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			out, err := m.Forward(s, b, true)
			baseLoss = out.Loss.Item()
			return err
		}))
		o, err := NewLoRA(m, LoRAConfig{Dropout: 0.1, Seed: 3})
		require.NoError(t, err)
		assert.Equal(t, base, logitsOf(t, m, b), "%v: logits with fresh adapters", dt)
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			out, err := m.Forward(s, b, true) // training pass: dropout on the adapter input
			assert.Equal(t, baseLoss, out.Loss.Item(), "%v: training loss with fresh adapters", dt)
			return err
		}))
		var targets []string
		for _, p := range o.Targets() {
			targets = append(targets, p.Name)
		}
		assert.Equal(t, []string{"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight",
			"model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.v_proj.weight"}, targets)
		assert.Equal(t, []string{"model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj.lora_B.weight",
			"model.layers.0.self_attn.v_proj.lora_A.weight", "model.layers.0.self_attn.v_proj.lora_B.weight",
			"model.layers.1.self_attn.q_proj.lora_A.weight", "model.layers.1.self_attn.q_proj.lora_B.weight",
			"model.layers.1.self_attn.v_proj.lora_A.weight", "model.layers.1.self_attn.v_proj.lora_B.weight"}, names(o.Trainable()))
		for _, x := range o.adapters {
			assert.Equal(t, torch.F32, x.a.T.DType(), "adapters are float32 (peft's autocast_adapter_dtype)")
			assert.Equal(t, []int64{8, 64}, x.a.T.Shape())
			assert.Equal(t, []int64{x.base.T.Size(0), 8}, x.b.T.Shape())
			av := x.a.T.Float64s()
			bound := 1 / math.Sqrt(64)
			lo, hi := av[0], av[0]
			for _, v := range av {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			assert.True(t, lo >= -bound && hi <= bound, "A within ±1/sqrt(in): [%g, %g]", lo, hi)
			assert.Greater(t, hi-lo, bound, "A spread over its range")
			assert.Equal(t, 0.0, s.In(x.b.T).Abs().Sum().Item(), "B starts at zero")
		}
		assert.InDelta(t, 2.0, o.Config().Scaling(), 0, "alpha 16 / r 8")
		assert.Equal(t, (8*64+64*8+8*64+32*8)*2*4, int(o.AdapterBytes()))
		o.Close()
		assert.False(t, m.HasAdapter(), "Close removes the adapter")
	}
	r := loadRoberta(t)
	b := robertaBatch(s)
	base := logitsOf(t, r, b)
	o, err := NewLoRA(r, LoRAConfig{})
	require.NoError(t, err)
	defer o.Close()
	assert.Equal(t, base, logitsOf(t, r, b))
	var full []string
	for _, p := range o.FullyTrained() {
		full = append(full, p.Name)
	}
	assert.Equal(t, []string{"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"}, full,
		"the classifier trains in full (peft's modules_to_save)")
	assert.Contains(t, names(o.Trainable()), "roberta.encoder.layer.0.attention.self.query.lora_A.weight")
	assert.Contains(t, names(o.Trainable()), "roberta.encoder.layer.0.attention.self.value.lora_B.weight")
	assert.NotContains(t, names(o.Trainable()), "roberta.encoder.layer.0.attention.self.key.lora_A.weight")
}

// TestLoRATargets: peft's matching (exact name or "."+suffix), all-linear, a regular
// expression, and clear errors for missing targets, non-linear targets and a model
// without the adapter path.
func TestLoRATargets(t *testing.T) {
	m := loadLlama(t, torch.F32)
	count := func(c LoRAConfig) (int, error) {
		o, err := NewLoRA(m, c)
		if err != nil {
			return 0, err
		}
		defer o.Close()
		return len(o.Targets()), nil
	}
	n, err := count(LoRAConfig{Targets: []string{AllLinear}})
	require.NoError(t, err)
	assert.Equal(t, 14, n, "7 linear layers x 2 layers")
	n, err = count(LoRAConfig{Targets: []string{"mlp.down_proj", "k_proj"}})
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	n, err = count(LoRAConfig{TargetRegex: `.*\.1\.self_attn\.(q|o)_proj`})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	_, err = count(LoRAConfig{Targets: []string{"q_proj", "query"}})
	assert.ErrorContains(t, err, "target modules query not found in the model (linear layers: self_attn.q_proj, self_attn.k_proj")
	_, err = count(LoRAConfig{Targets: []string{"embed_tokens"}})
	assert.ErrorContains(t, err, "match model.embed_tokens, which the model does not apply as adapted linear layers")
	_, err = count(LoRAConfig{Targets: []string{"proj"}})
	assert.ErrorContains(t, err, "not found")
	_, err = count(LoRAConfig{Train: []string{"lm_head"}})
	require.NoError(t, err)
	_, err = count(LoRAConfig{Train: []string{"nope"}})
	assert.ErrorContains(t, err, `module to train in full "nope" not found`)
	_, err = count(LoRAConfig{Dropout: 1})
	assert.ErrorContains(t, err, "dropout 1 outside [0, 1)")
	toy := newToy(t, toyOpts{}, 1)
	_, err = NewLoRA(toy, LoRAConfig{Targets: []string{"w1"}})
	assert.ErrorContains(t, err, "does not apply its linear layers through adapters")
	rc, err := llama.Load(filepath.Join(fixtureRoot(), "llama-tiny"), llama.Options{Device: testDevice, RecomputeMLP: true})
	require.NoError(t, err)
	defer rc.Close()
	_, err = NewLoRA(rc, LoRAConfig{Dropout: 0.05})
	assert.ErrorContains(t, err, "cannot be used with activation recompute")
	o, err := NewLoRA(rc, LoRAConfig{})
	require.NoError(t, err, "no dropout: recompute is fine")
	o.Close()
}

// TestLoRAGradFiniteDifferences: in float64, the gradients the adapters get from
// backward equal central finite differences of the loss in A and B; the frozen base
// weights get none, and the targeted layers change as W + (alpha/r)·B·A would.
func TestLoRAGradFiniteDifferences(t *testing.T) {
	m := loadLlama(t, torch.F64)
	o, err := NewLoRA(m, LoRAConfig{Rank: 4, Alpha: 12, Targets: []string{"v_proj", "down_proj"}, Seed: 5})
	require.NoError(t, err)
	defer o.Close()
	randomizeB(t, o, 9, 0.3)
	require.NoError(t, SetTrainable(m.Parameters(), o.Trainable()))
	s := torch.NewScope()
	defer s.Close()
	b := randomBatch(t, s, m.Config().VocabSize)
	// the model's loss is taken in float32: differentiate a float64 function of the
	// logits instead, sum(logits * R) for a fixed random R
	g := torch.NewGenerator(13, torch.CPU)
	defer g.Close()
	rw := s.Randn([]int64{2, 16, int64(m.Config().VocabSize)}, torch.F64, torch.CPU, g).ToDevice(torch.F64, testDevice)
	objective := func(s *torch.Scope) (*torch.Tensor, error) {
		out, err := m.Forward(s, b, true)
		if err != nil {
			return nil, err
		}
		return out.Logits.Mul(rw).Sum(), nil
	}
	loss := func() float64 {
		var v float64
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			var err error
			torch.NoGrad(func() {
				var l *torch.Tensor
				if l, err = objective(s); err == nil {
					v = l.Item()
				}
			})
			return err
		}))
		return v
	}
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		l, err := objective(s)
		if err == nil {
			l.Backward()
		}
		return err
	}))
	grads := map[string][]float64{}
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		for _, p := range o.Trainable() {
			g := p.T.GradIn(s)
			require.NotNil(t, g, "%s has a gradient", p.Name)
			grads[p.Name] = g.Float64s()
		}
		for _, p := range m.Parameters() {
			assert.Nil(t, p.T.GradIn(s), "frozen %s has no gradient", p.Name)
		}
		return nil
	}))
	const h = 1e-6
	checked := 0
	for _, p := range o.Trainable() {
		n := p.Numel()
		for _, i := range []int64{0, n / 3, n - 1} {
			x := p.T.Float64s()[i]
			set := func(v float64) {
				require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
					vals := p.T.Float64s()
					vals[i] = v
					p.T.CopyFrom(s.FromFloat64(vals, p.T.Shape()...))
					return nil
				}))
			}
			set(x + h)
			up := loss()
			set(x - h)
			down := loss()
			set(x)
			fd := (up - down) / (2 * h)
			g := grads[p.Name][i]
			assert.InDelta(t, fd, g, 1e-7+1e-6*math.Abs(fd), "%s[%d]: backward %g, finite difference %g", p.Name, i, g, fd)
			checked++
		}
	}
	assert.Equal(t, 3*8, checked)

	// the adapted layer is the merged weight's layer
	x := o.adapters[0]
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		torch.NoGrad(func() {
			in := s.Randn([]int64{3, x.base.T.Size(1)}, torch.F64, testDevice, nil)
			got := m.Linear(s, in, x.base, nil, false)
			want := in.Linear(s.In(x.base.T).Add(s.In(x.b.T).Matmul(x.a.T).MulScalar(3)), nil)
			assert.True(t, torch.AllClose(got, want, 1e-12, 1e-12), "W x + 3 B A x")
		})
		return nil
	}))
}

// TestLoRADropout: in training passes the adapter input is dropped with the configured
// probability (a different loss from the undropped pass, reproducible from the seed);
// evaluation passes never drop.
func TestLoRADropout(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	run := func(dropout float64) (train1, train2, eval float64) {
		m := loadLlama(t, torch.F32)
		o, err := NewLoRA(m, LoRAConfig{Dropout: dropout, Seed: 7})
		require.NoError(t, err)
		defer o.Close()
		randomizeB(t, o, 2, 0.5)
		b := randomBatch(t, s, m.Config().VocabSize)
		pass := func(train bool) float64 {
			var v float64
			require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
				out, err := m.Forward(s, b, train)
				if err == nil {
					v = out.Loss.Item()
				}
				return err
			}))
			return v
		}
		return pass(true), pass(true), pass(false)
	}
	a1, a2, ae := run(0.5)
	b1, _, _ := run(0.5)
	n1, n2, ne := run(0)
	assert.Equal(t, a1, b1, "the masks come from the seed")
	assert.NotEqual(t, a1, a2, "a new mask each pass")
	assert.NotEqual(t, a1, ae, "training passes drop")
	assert.Equal(t, ae, ne, "evaluation passes do not drop")
	assert.Equal(t, n1, n2)
	assert.Equal(t, n1, ne)
}

// TestLoRAMergedCheckpoint: after training, the merged model saved in Hugging Face
// layout loads (as a plain model) to the adapter model's logits; the adapted model is
// unchanged afterwards, bit for bit.
func TestLoRAMergedCheckpoint(t *testing.T) {
	m := loadLlama(t, torch.F32)
	o, err := NewLoRA(m, LoRAConfig{Targets: []string{"q_proj", "v_proj", "down_proj"}, Dropout: 0.1})
	require.NoError(t, err)
	defer o.Close()
	res, err := Train(context.Background(), m, o, newRandomTokensT(t, m.Config().VocabSize), TrainConfig{Steps: 6, LR: 1e-2}, "")
	require.NoError(t, err)
	require.Len(t, res.Losses, 6)
	s := torch.NewScope()
	defer s.Close()
	b := randomBatch(t, s, m.Config().VocabSize)
	adapted := logitsOf(t, m, b)
	weights := paramBytes(m)
	dir := t.TempDir()
	require.NoError(t, o.Merged(func() error {
		assert.True(t, m.HasAdapter(), "the adapter stays installed")
		merged := logitsOf(t, m, b)
		assert.InDeltaSlice(t, adapted, merged, 1e-4, "merged weights, adapter path off")
		return m.Save(dir)
	}))
	assert.Equal(t, adapted, logitsOf(t, m, b), "the adapted model is back, bit for bit")
	for name, w := range paramBytes(m) {
		assert.True(t, bytes.Equal(weights[name], w), "%s restored", name)
	}
	loaded, err := llama.Load(dir, llama.Options{Device: testDevice})
	require.NoError(t, err)
	defer loaded.Close()
	got := logitsOf(t, loaded, b)
	assert.InDeltaSlice(t, adapted, got, 1e-4, "the merged checkpoint gives the adapter model's logits")
	var maxDiff float64
	base := loadLlama(t, torch.F32)
	for i, v := range logitsOf(t, base, b) {
		maxDiff = math.Max(maxDiff, math.Abs(v-adapted[i]))
	}
	assert.Greater(t, maxDiff, 1e-2, "training moved the adapted model away from the base")
}

func newRandomTokensT(t *testing.T, vocab int) Data {
	t.Helper()
	d, err := NewRandomTokens(vocab, 2, 16, 4, testDevice)
	require.NoError(t, err)
	return d
}

// TestLoRAPeftRoundTrip: SaveAdapter writes peft's layout (adapter_config.json fields
// and key names as PeftModel.save_pretrained); LoadLoRAAdapter reads it back onto a
// fresh base model to the same logits, for Llama (CAUSAL_LM) and RoBERTa (SEQ_CLS, the
// classifier in modules_to_save); broken files are refused naming the key.
func TestLoRAPeftRoundTrip(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()

	m := loadLlama(t, torch.F32)
	o, err := NewLoRA(m, LoRAConfig{Dropout: 0.05, Seed: 11})
	require.NoError(t, err)
	defer o.Close()
	randomizeB(t, o, 4, 0.2)
	b := randomBatch(t, s, m.Config().VocabSize)
	want := logitsOf(t, m, b)
	dir := t.TempDir()
	require.NoError(t, o.SaveAdapter(dir, AdapterInfo{BaseModel: "meta-llama/tiny"}))

	raw, err := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(raw), "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n"), "json.dumps(indent=2, sort_keys=True): %s", raw)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(raw, &cfg))
	assert.Equal(t, "LORA", cfg["peft_type"])
	assert.Equal(t, "CAUSAL_LM", cfg["task_type"])
	assert.Equal(t, 8.0, cfg["r"])
	assert.Equal(t, 16.0, cfg["lora_alpha"])
	assert.Equal(t, 0.05, cfg["lora_dropout"])
	assert.Equal(t, []any{"q_proj", "v_proj"}, cfg["target_modules"])
	assert.Equal(t, "meta-llama/tiny", cfg["base_model_name_or_path"])
	assert.Equal(t, "none", cfg["bias"])
	assert.Nil(t, cfg["modules_to_save"])
	f, err := safetensors.Open(filepath.Join(dir, AdapterModelFile))
	require.NoError(t, err)
	keys := f.Names()
	sort.Strings(keys)
	assert.Equal(t, map[string]string{"format": "pt"}, f.Metadata())
	f.Close()
	assert.Len(t, keys, 8)
	assert.Equal(t, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", keys[0])
	assert.Equal(t, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", keys[7])

	fresh := loadLlama(t, torch.F32)
	lo, info, err := LoadLoRAAdapter(fresh, dir, AdamConfig{}, 1)
	require.NoError(t, err)
	defer lo.Close()
	assert.Equal(t, "meta-llama/tiny", info.BaseModel)
	assert.Equal(t, 0.05, lo.Config().Dropout)
	assert.Equal(t, want, logitsOf(t, fresh, b), "the adapter read back gives the same logits")

	// RoBERTa: SEQ_CLS with the classifier saved as modules_to_save
	r := loadRoberta(t)
	ro, err := NewLoRA(r, LoRAConfig{Targets: []string{"query", "value", "intermediate.dense"}})
	require.NoError(t, err)
	defer ro.Close()
	randomizeB(t, ro, 5, 0.2)
	rb := robertaBatch(s)
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		ro.FullyTrained()[0].T.MulScalarInPlace(1.5) // a trained head differs from the checkpoint's
		return nil
	}))
	rwant := logitsOf(t, r, rb)
	rdir := t.TempDir()
	require.NoError(t, ro.SaveAdapter(rdir, AdapterInfo{}))
	raw, err = os.ReadFile(filepath.Join(rdir, AdapterConfigFile))
	require.NoError(t, err)
	cfg = nil
	require.NoError(t, json.Unmarshal(raw, &cfg))
	assert.Equal(t, "SEQ_CLS", cfg["task_type"])
	assert.Equal(t, []any{"classifier", "score"}, cfg["modules_to_save"])
	assert.Equal(t, []any{"intermediate.dense", "query", "value"}, cfg["target_modules"])
	assert.Nil(t, cfg["base_model_name_or_path"])
	f, err = safetensors.Open(filepath.Join(rdir, AdapterModelFile))
	require.NoError(t, err)
	rkeys := f.Names()
	f.Close()
	assert.Contains(t, rkeys, "base_model.model.classifier.dense.weight")
	assert.Contains(t, rkeys, "base_model.model.classifier.out_proj.bias")
	assert.Contains(t, rkeys, "base_model.model.roberta.encoder.layer.1.intermediate.dense.lora_B.weight")
	rfresh := loadRoberta(t)
	rlo, _, err := LoadLoRAAdapter(rfresh, rdir, AdamConfig{}, 1)
	require.NoError(t, err)
	defer rlo.Close()
	assert.Equal(t, rwant, logitsOf(t, rfresh, rb), "adapters and classifier read back")

	// a file peft would not write, or one that does not fit the model
	bad := func(edit func(c map[string]any), want string) {
		t.Helper()
		d := t.TempDir()
		c := map[string]any{}
		require.NoError(t, json.Unmarshal(raw, &c))
		edit(c)
		b, _ := json.Marshal(c)
		require.NoError(t, os.WriteFile(filepath.Join(d, AdapterConfigFile), b, 0o644))
		w, _ := os.ReadFile(filepath.Join(rdir, AdapterModelFile))
		require.NoError(t, os.WriteFile(filepath.Join(d, AdapterModelFile), w, 0o644))
		m := loadRoberta(t)
		_, _, err := LoadLoRAAdapter(m, d, AdamConfig{}, 1)
		assert.ErrorContains(t, err, want)
	}
	bad(func(c map[string]any) { c["use_dora"] = true }, `"use_dora" is true`)
	bad(func(c map[string]any) { c["r"] = 4 }, "roberta.encoder.layer.0.attention.self.query.lora_A.weight\" has shape [8 64], want [4 64]")
	bad(func(c map[string]any) { c["target_modules"] = []string{"query"} }, "unexpected key \"base_model.model.roberta.encoder.layer.0.attention.self.value.lora_A.weight\"")
	bad(func(c map[string]any) { c["target_modules"] = []string{"query", "value", "key", "intermediate.dense"} },
		"missing key \"base_model.model.roberta.encoder.layer.0.attention.self.key.lora_A.weight\"")
	bad(func(c map[string]any) { c["peft_type"] = "IA3" }, `"peft_type" is "IA3"`)
}

// TestLoRAReadsPeftConfig: an adapter_config.json as a recent peft writes it (every
// LoraConfig field, target_modules in set order, peft_version) reads into the same
// settings; a string target_modules is a regular expression over module names.
func TestLoRAReadsPeftConfig(t *testing.T) {
	dir := t.TempDir()
	// fields and defaults of peft's LoraConfig (src/peft/tuners/lora/config.py)
	const peftJSON = `{
  "alora_invocation_tokens": null,
  "alpha_pattern": {},
  "arrow_config": null,
  "auto_mapping": null,
  "base_model_name_or_path": "/models/llama",
  "bias": "none",
  "corda_config": null,
  "ensure_weight_tying": false,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 32,
  "lora_bias": false,
  "lora_dropout": 0.1,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "peft_version": "0.17.1",
  "qalora_group_size": 16,
  "r": 16,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "v_proj",
    "q_proj"
  ],
  "target_parameters": null,
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": true
}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, AdapterConfigFile), []byte(peftJSON), 0o644))
	c, info, err := ReadAdapterConfig(dir)
	require.NoError(t, err)
	assert.Equal(t, LoRAConfig{Rank: 16, Alpha: 32, Dropout: 0.1, RSLoRA: true, Targets: []string{"q_proj", "v_proj"}}, c)
	assert.Equal(t, AdapterInfo{BaseModel: "/models/llama", TaskType: "CAUSAL_LM"}, info)
	assert.InDelta(t, 8.0, c.Scaling(), 1e-12, "rslora: alpha/sqrt(r)")
	require.NoError(t, os.WriteFile(filepath.Join(dir, AdapterConfigFile),
		[]byte(`{"peft_type": "LORA", "r": 2, "target_modules": ".*\\.(q|v)_proj"}`), 0o644))
	c, _, err = ReadAdapterConfig(dir)
	require.NoError(t, err)
	assert.Equal(t, `.*\.(q|v)_proj`, c.TargetRegex)
	assert.Equal(t, 8.0, c.Alpha, "peft's default lora_alpha")
}

// TestLoRAKVCache: the KV-cache decode path goes through the adapters as the training
// forward does: with LoRA on every linear (B nonzero), next-token logits computed one
// position at a time with the cache equal those of recomputing the whole sequence, and
// differ from the base model's.
func TestLoRAKVCache(t *testing.T) {
	m := loadLlama(t, torch.F32)
	o, err := NewLoRA(m, LoRAConfig{Targets: []string{"all-linear"}})
	require.NoError(t, err)
	defer o.Close()
	randomizeB(t, o, 7, 0.2)
	cached, err := m.NewSession(llama.SessionOptions{})
	require.NoError(t, err)
	defer cached.Close()
	full, err := m.NewSession(llama.SessionOptions{NoCache: true})
	require.NoError(t, err)
	defer full.Close()
	base := loadLlama(t, torch.F32)
	plain, err := base.NewSession(llama.SessionOptions{NoCache: true})
	require.NoError(t, err)
	defer plain.Close()
	seq := []int{1, 17, 42, 99}
	var moved float64
	for step := 0; step < 6; step++ {
		a, err := cached.Logits(seq)
		require.NoError(t, err)
		b, err := full.Logits(seq)
		require.NoError(t, err)
		c, err := plain.Logits(seq)
		require.NoError(t, err)
		for i := range a {
			require.InDelta(t, b[i], a[i], 2e-4, "step %d logit %d", step, i)
			moved = math.Max(moved, math.Abs(float64(a[i]-c[i])))
		}
		seq = append(seq, (seq[len(seq)-1]*31+step)%m.Config().VocabSize)
	}
	assert.Greater(t, moved, 1e-2, "the adapters change the logits")
}
