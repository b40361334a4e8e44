package config

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixtureRoot(t testing.TB) string {
	if r := os.Getenv("BLOCKLLM_FIXTURES"); r != "" {
		return r
	}
	r, err := filepath.Abs(filepath.Join("..", "..", "testdata", "hf"))
	require.NoError(t, err)
	return r
}

// TestFixtureConfigs loads every fixture directory that has a config.json and
// expects Marshal to reproduce the file transformers wrote, byte for byte.
func TestFixtureConfigs(t *testing.T) {
	entries, err := os.ReadDir(fixtureRoot(t))
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		p := filepath.Join(fixtureRoot(t), e.Name(), FileName)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			c, err := Load(filepath.Dir(p))
			require.NoError(t, err)
			mt, err := ModelType(filepath.Dir(p))
			require.NoError(t, err)
			assert.Equal(t, mt, c.ModelType())
			got, err := c.Marshal()
			require.NoError(t, err)
			want, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}
	assert.GreaterOrEqual(t, n, 3)
}

func TestFixtureLlamaValues(t *testing.T) {
	c, err := LoadLlama(filepath.Join(fixtureRoot(t), "llama-tiny"))
	require.NoError(t, err)
	assert.Equal(t, 1024, c.VocabSize)
	assert.Equal(t, 64, c.HiddenSize)
	assert.Equal(t, 160, c.IntermediateSize)
	assert.Equal(t, 2, c.NumHiddenLayers)
	assert.Equal(t, 4, c.NumAttentionHeads)
	assert.Equal(t, 2, c.KVHeads())
	assert.Equal(t, 16, c.HeadDim())
	assert.Equal(t, 128, c.MaxPositionEmbeddings)
	assert.Equal(t, 1e-5, c.RMSNormEps)
	assert.Equal(t, 10000.0, c.RopeTheta)
	assert.Equal(t, "default", c.RopeScaling.Type)
	assert.False(t, c.TieWordEmbeddings)
	assert.False(t, c.AttentionBias)
	assert.False(t, c.MLPBias)
	assert.Equal(t, "float32", c.DType)
	assert.Equal(t, []int{2}, c.EOSTokenIDs)
	assert.Nil(t, c.PadTokenID)
	assert.Equal(t, []string{"LlamaForCausalLM"}, c.Architectures)
	assert.Contains(t, c.Extra, "use_cache")
	b, err := LoadLlama(filepath.Join(fixtureRoot(t), "llama-tiny-bf16-sharded", FileName))
	require.NoError(t, err)
	assert.Equal(t, "bfloat16", b.DType)

	r, err := LoadRoberta(filepath.Join(fixtureRoot(t), "roberta-tiny-sst2"))
	require.NoError(t, err)
	assert.Equal(t, 2, r.NumLabels())
	assert.False(t, r.IsRegression())
	assert.Equal(t, 1, r.PadTokenID)
	assert.Equal(t, 1, r.TypeVocabSize)
	assert.Equal(t, 1e-12, r.LayerNormEps)
	assert.Equal(t, 130, r.MaxPositionEmbeddings)
	assert.Nil(t, r.ClassifierDropout)
	assert.Equal(t, "gelu", r.HiddenAct)
}

// llama31 is Llama 3.1 8B's config as transformers v4 wrote it: top-level
// rope_theta, rope_scaling of type llama3, torch_dtype, eos list, GQA 32/8.
const llama31 = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}`

func TestLlamaV4Config(t *testing.T) {
	c, err := ParseLlama([]byte(llama31))
	require.NoError(t, err)
	assert.Equal(t, 500000.0, c.RopeTheta)
	assert.Equal(t, RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}, c.RopeScaling)
	assert.Equal(t, "bfloat16", c.DType)
	assert.Equal(t, 8, c.KVHeads())
	assert.Equal(t, 128, c.HeadDim())
	assert.Equal(t, []int{128001, 128008, 128009}, c.EOSTokenIDs)
	assert.Equal(t, 128000, *c.BOSTokenID)

	out, err := c.Marshal()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	for _, k := range []string{"rope_theta", "rope_scaling", "torch_dtype"} {
		assert.NotContains(t, m, k, "v5 output must not have %s", k)
	}
	assert.Equal(t, "bfloat16", m["dtype"])
	assert.Equal(t, map[string]any{"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
		"high_freq_factor": 4.0, "original_max_position_embeddings": 8192.0}, m["rope_parameters"])
	assert.Equal(t, []any{128001.0, 128008.0, 128009.0}, m["eos_token_id"])
	assert.Contains(t, string(out), `"rope_theta": 500000.0`)
	assert.Contains(t, string(out), `"rms_norm_eps": 1e-05`)
	c2, err := ParseLlama(out)
	require.NoError(t, err)
	assert.Equal(t, c.Map(), c2.Map())
	assert.Equal(t, c.RopeScaling, c2.RopeScaling)
	assert.Equal(t, c.EOSTokenIDs, c2.EOSTokenIDs)
}

func TestLlamaVariants(t *testing.T) {
	base := func(edit func(m map[string]any)) []byte {
		m := map[string]any{
			"model_type": "llama", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
			"num_hidden_layers": 1, "num_attention_heads": 4,
		}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return b
	}
	// Minimal config: defaults filled in.
	c, err := ParseLlama(base(nil))
	require.NoError(t, err)
	assert.Equal(t, 4, c.KVHeads())
	assert.Equal(t, 8, c.HeadDim())
	assert.Equal(t, DefaultRopeTheta, c.RopeTheta)
	assert.Equal(t, DefaultLlamaRMSNormEps, c.RMSNormEps)
	assert.Equal(t, DefaultMaxPositionEmbeddings, c.MaxPositionEmbeddings)
	assert.Equal(t, "silu", c.HiddenAct)
	assert.Equal(t, "", c.DType)

	// Tied embeddings, a single kv head (multi-query), biases, head_dim
	// that differs from hidden/heads, another rope_theta.
	c, err = ParseLlama(base(func(m map[string]any) {
		m["tie_word_embeddings"] = true
		m["num_key_value_heads"] = 1
		m["attention_bias"] = true
		m["mlp_bias"] = true
		m["head_dim"] = 16
		m["rope_theta"] = 1e6
	}))
	require.NoError(t, err)
	assert.True(t, c.TieWordEmbeddings)
	assert.Equal(t, 1, c.KVHeads())
	assert.Equal(t, 16, c.HeadDim())
	assert.True(t, c.AttentionBias && c.MLPBias)
	assert.Equal(t, 1e6, c.RopeTheta)
	out, err := c.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(out), `"tie_word_embeddings": true`)
	assert.Contains(t, string(out), `"rope_theta": 1000000.0`)
	c2, err := ParseLlama(out)
	require.NoError(t, err)
	assert.Equal(t, c.Map(), c2.Map())
	assert.Equal(t, 16, c2.ExplicitHeadDim)
	assert.Equal(t, 1, c2.NumKeyValueHeads)

	// Legacy v4 linear scaling with "type".
	c, err = ParseLlama(base(func(m map[string]any) {
		m["rope_scaling"] = map[string]any{"type": "linear", "factor": 2.0}
	}))
	require.NoError(t, err)
	assert.Equal(t, "linear", c.RopeScaling.Type)
	assert.Equal(t, 2.0, c.RopeScaling.Factor)

	// v5 rope_parameters and v4 rope_theta agreeing; null rope_scaling.
	c, err = ParseLlama(base(func(m map[string]any) {
		m["rope_parameters"] = map[string]any{"rope_theta": 5e5, "rope_type": "default"}
		m["rope_theta"] = 5e5
		m["rope_scaling"] = nil
		m["dtype"] = "float16"
		m["torch_dtype"] = "float16"
	}))
	require.NoError(t, err)
	assert.Equal(t, 5e5, c.RopeTheta)
	assert.Equal(t, "float16", c.DType)

	// Unknown keys, including nested ones, survive a round trip.
	c, err = ParseLlama(base(func(m map[string]any) {
		m["quantization_config"] = map[string]any{"bits": 4, "list": []any{1, "x"}}
		m["rope_parameters"] = map[string]any{"rope_type": "linear", "factor": 4, "partial_rotary_factor": 1.0}
	}))
	require.NoError(t, err)
	out, err = c.Marshal()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Equal(t, map[string]any{"bits": 4.0, "list": []any{1.0, "x"}}, m["quantization_config"])
	assert.Equal(t, 1.0, m["rope_parameters"].(map[string]any)["partial_rotary_factor"])
}

// galore60m is GaLore's configs/llama_60m.json.
const galore60m = `{
    "architectures": [
        "LLaMAForCausalLM"
    ],
    "bos_token_id": 0,
    "eos_token_id": 1,
    "hidden_act": "silu",
    "hidden_size": 512,
    "intermediate_size": 1376,
    "initializer_range": 0.02,
    "max_sequence_length": 1024,
    "model_type": "llama",
    "num_attention_heads": 8,
    "num_hidden_layers": 8,
    "pad_token_id": -1,
    "rms_norm_eps": 1e-06,
    "transformers_version": "4.28.1",
    "use_cache": true,
    "vocab_size": 32000
}`

func TestGaLoreConfigAndPresets(t *testing.T) {
	c, err := ParseLlama([]byte(galore60m))
	require.NoError(t, err)
	assert.Equal(t, 1024, c.MaxPositionEmbeddings)
	assert.Equal(t, -1, *c.PadTokenID)
	out, err := c.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(out), `"max_position_embeddings": 1024`)
	assert.NotContains(t, string(out), "max_sequence_length")

	p, err := LlamaPreset("llama-60m")
	require.NoError(t, err)
	for _, f := range []struct{ a, b int }{
		{p.VocabSize, c.VocabSize}, {p.HiddenSize, c.HiddenSize}, {p.IntermediateSize, c.IntermediateSize},
		{p.NumHiddenLayers, c.NumHiddenLayers}, {p.NumAttentionHeads, c.NumAttentionHeads},
		{p.MaxPositionEmbeddings, c.MaxPositionEmbeddings}, {p.KVHeads(), c.KVHeads()}, {*p.BOSTokenID, *c.BOSTokenID},
	} {
		assert.Equal(t, f.b, f.a)
	}
	assert.Equal(t, c.RMSNormEps, p.RMSNormEps)
	assert.Equal(t, c.EOSTokenIDs, p.EOSTokenIDs)

	want := map[string][5]int{ // hidden, intermediate, heads, layers, max positions
		"llama-tiny": {64, 172, 4, 2, 1024}, "llama-20m": {256, 688, 4, 4, 1024}, "llama-60m": {512, 1376, 8, 8, 1024},
		"llama-130m": {768, 2048, 12, 12, 1024}, "llama-350m": {1024, 2736, 16, 24, 1024},
		"llama-1b": {2048, 5461, 32, 24, 1024}, "llama-7b": {4096, 11008, 32, 32, 2048},
	}
	require.Len(t, LlamaPresets(), len(want))
	for _, name := range LlamaPresets() {
		p, err := LlamaPreset(name)
		require.NoError(t, err)
		w := want[name]
		assert.Equal(t, w, [5]int{p.HiddenSize, p.IntermediateSize, p.NumAttentionHeads, p.NumHiddenLayers, p.MaxPositionEmbeddings}, name)
		assert.Equal(t, 32000, p.VocabSize)
		assert.Equal(t, 1e-6, p.RMSNormEps)
		assert.False(t, p.TieWordEmbeddings)
		require.NoError(t, p.Validate(), name)
		out, err := p.Marshal()
		require.NoError(t, err)
		back, err := ParseLlama(out)
		require.NoError(t, err)
		assert.Equal(t, p.Map(), back.Map(), name)
	}
	p, err = LlamaPreset("LLAMA_130M")
	require.NoError(t, err)
	assert.Equal(t, 64, p.HeadDim())
	_, err = LlamaPreset("llama-3b")
	assert.ErrorContains(t, err, `unknown Llama preset "llama-3b" (known: llama-tiny, llama-20m`)
	// Presets are independent copies.
	p.HiddenSize = 1
	q, _ := LlamaPreset("llama-130m")
	assert.Equal(t, 768, q.HiddenSize)
}

func TestLlamaBadConfigs(t *testing.T) {
	good := map[string]any{
		"model_type": "llama", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 1, "num_attention_heads": 4,
	}
	cases := []struct {
		name string
		edit func(m map[string]any)
		key  string // the key the error must name
		want string
	}{
		{"missing-hidden", func(m map[string]any) { delete(m, "hidden_size") }, "hidden_size", "missing"},
		{"string-size", func(m map[string]any) { m["hidden_size"] = "32" }, "hidden_size", `want an integer, got "32"`},
		{"fraction-size", func(m map[string]any) { m["vocab_size"] = 10.5 }, "vocab_size", "want an integer"},
		{"zero-layers", func(m map[string]any) { m["num_hidden_layers"] = 0 }, "num_hidden_layers", "must be positive"},
		{"negative-heads", func(m map[string]any) { m["num_attention_heads"] = -4 }, "num_attention_heads", "must be positive"},
		{"kv-not-divisor", func(m map[string]any) { m["num_key_value_heads"] = 3 }, "num_key_value_heads", "3 does not divide num_attention_heads 4"},
		{"heads-not-divisor", func(m map[string]any) { m["num_attention_heads"] = 5 }, "num_attention_heads", "does not divide hidden_size 32"},
		{"odd-head-dim", func(m map[string]any) { m["head_dim"] = 7 }, "head_dim", "odd"},
		{"zero-eps", func(m map[string]any) { m["rms_norm_eps"] = 0 }, "rms_norm_eps", "must be positive"},
		{"bool-as-string", func(m map[string]any) { m["tie_word_embeddings"] = "yes" }, "tie_word_embeddings", "want true or false"},
		{"gelu", func(m map[string]any) { m["hidden_act"] = "gelu" }, "hidden_act", "not supported"},
		{"dtype", func(m map[string]any) { m["dtype"] = "float8" }, "dtype", `unknown dtype "float8"`},
		{"dtype-conflict", func(m map[string]any) { m["dtype"] = "float32"; m["torch_dtype"] = "bfloat16" }, "dtype", "disagrees with torch_dtype"},
		{"model-type", func(m map[string]any) { m["model_type"] = "roberta" }, "model_type", `"roberta", want "llama"`},
		{"yarn", func(m map[string]any) {
			m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4.0}
		}, "rope_parameters.rope_type", `"yarn" is not supported (supported: default, linear, llama3)`},
		{"llama3-missing", func(m map[string]any) {
			m["rope_parameters"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
		}, "rope_parameters.original_max_position_embeddings", "positive"},
		{"llama3-factors", func(m map[string]any) {
			m["rope_parameters"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}
		}, "rope_parameters.high_freq_factor", "high_freq_factor > low_freq_factor"},
		{"linear-factor", func(m map[string]any) {
			m["rope_scaling"] = map[string]any{"type": "linear", "factor": 0.5}
		}, "rope_parameters.factor", "factor >= 1"},
		{"rope-factor-string", func(m map[string]any) {
			m["rope_parameters"] = map[string]any{"rope_type": "linear", "factor": "2"}
		}, "rope_parameters.factor", "want a number"},
		{"rope-not-object", func(m map[string]any) { m["rope_parameters"] = 3 }, "rope_parameters", "want an object"},
		{"theta-conflict", func(m map[string]any) {
			m["rope_theta"] = 10000.0
			m["rope_parameters"] = map[string]any{"rope_theta": 500000.0, "rope_type": "default"}
		}, "rope_theta", "disagrees with rope_parameters.rope_theta"},
		{"theta-negative", func(m map[string]any) { m["rope_theta"] = -1 }, "rope_theta", "must be positive"},
		{"scaling-conflict", func(m map[string]any) {
			m["rope_parameters"] = map[string]any{"rope_type": "linear", "factor": 2.0}
			m["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": 4.0}
		}, "rope_scaling", "disagrees with rope_parameters"},
		{"seq-len-conflict", func(m map[string]any) {
			m["max_position_embeddings"] = 2048
			m["max_sequence_length"] = 1024
		}, "max_sequence_length", "disagrees with max_position_embeddings 2048"},
		{"bos-outside", func(m map[string]any) { m["bos_token_id"] = 100 }, "bos_token_id", "outside the vocabulary [0, 100)"},
		{"eos-list-bad", func(m map[string]any) { m["eos_token_id"] = []any{1, "2"} }, "eos_token_id", "want an integer"},
		{"eos-outside", func(m map[string]any) { m["eos_token_id"] = []any{1, 200} }, "eos_token_id", "outside the vocabulary"},
		{"architectures", func(m map[string]any) { m["architectures"] = "LlamaForCausalLM" }, "architectures", "want an array of strings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range good {
				m[k] = v
			}
			c.edit(m)
			data, err := json.Marshal(m)
			require.NoError(t, err)
			_, err = ParseLlama(data)
			require.Error(t, err)
			var e *Error
			require.True(t, errors.As(err, &e), "%T", err)
			assert.Equal(t, c.key, e.Key)
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), `config: key "`+c.key+`": `), err.Error())
			// Through a file, the error names the file too.
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), data, 0o644))
			_, err = LoadLlama(dir)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "config: "+filepath.Join(dir, FileName)+`: key "`+c.key+`"`), err.Error())
		})
	}
}

func TestMalformedJSON(t *testing.T) {
	_, err := ParseLlama([]byte("{\n  \"vocab_size\": 10,\n  \"hidden_size\": ,\n}"))
	assert.ErrorContains(t, err, "invalid JSON at line 3")
	_, err = ParseLlama([]byte(`[1, 2]`))
	assert.ErrorContains(t, err, "not a JSON object")
	_, err = ParseRoberta(nil)
	assert.ErrorContains(t, err, "not a JSON object")
	_, err = Parse([]byte(`{"model_type": "bert"}`))
	assert.ErrorContains(t, err, `key "model_type": "bert" is not supported`)
	_, err = Parse([]byte(`{"architectures": ["GPT2LMHeadModel"]}`))
	assert.ErrorContains(t, err, `key "model_type": missing`)
	_, err = LoadLlama(filepath.Join(t.TempDir(), "nope"))
	assert.ErrorContains(t, err, "no such file")
	_, err = LoadJSON(filepath.Join(t.TempDir()))
	assert.ErrorContains(t, err, "config.json")
	c := &LlamaConfig{}
	assert.ErrorContains(t, c.Validate(), `key "vocab_size": must be positive, got 0`)
	_, err = c.Marshal()
	assert.Error(t, err)
	assert.Error(t, c.Save(t.TempDir()))
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	p, err := LlamaPreset("llama-tiny")
	require.NoError(t, err)
	p.TieWordEmbeddings = true
	p.DType = "bfloat16"
	p.RopeScaling = RopeScaling{Type: "linear", Factor: 2}
	require.NoError(t, p.Save(dir))
	mt, err := ModelType(dir)
	require.NoError(t, err)
	assert.Equal(t, "llama", mt)
	back, err := LoadLlama(dir)
	require.NoError(t, err)
	assert.Equal(t, p.Map(), back.Map())
	assert.True(t, back.TieWordEmbeddings)
	raw, err := LoadJSON(dir)
	require.NoError(t, err)
	assert.JSONEq(t, `{"rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0}`, string(raw["rope_parameters"]))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary files left")

	// ModelType from architectures when model_type is absent.
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(`{"architectures": ["RobertaForSequenceClassification"]}`), 0o644))
	mt, err = ModelType(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.Equal(t, "roberta", mt)
}

func TestFormatPyFloat(t *testing.T) {
	cases := map[float64]string{
		1e-05: "1e-05", 1e-6: "1e-06", 1e-12: "1e-12", 10000: "10000.0", 0.02: "0.02", 500000: "500000.0",
		1e16: "1e+16", 1.5e-7: "1.5e-07", 123456789012345: "123456789012345.0", 0.0001: "0.0001",
		0.1: "0.1", -2.5: "-2.5", 8: "8.0", 1e300: "1e+300", 5e-324: "5e-324", 0: "0.0",
		1234567890123456.7: "1234567890123456.8", 12345678901234567: "1.2345678901234568e+16", 0.00012345: "0.00012345",
		math.Copysign(0, -1): "-0.0", 3.14159: "3.14159",
	}
	for v, want := range cases {
		assert.Equal(t, want, formatPyFloat(v), "%v", v)
	}
	_, err := pyFloat(math.NaN()).MarshalJSON()
	assert.Error(t, err)
}
