package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Defaults applied by ParseLlama to keys a config leaves out (transformers'
// LlamaConfig defaults).
const (
	DefaultRopeTheta             = 10000.0
	DefaultLlamaRMSNormEps       = 1e-6
	DefaultMaxPositionEmbeddings = 2048
)

// LlamaConfig is a Llama config.json. Field comments give the JSON key.
// Configs from ParseLlama have their defaults filled in; a config built by
// hand must set every size, RMSNormEps, RopeTheta, MaxPositionEmbeddings and
// HiddenAct (or start from LlamaPreset).
type LlamaConfig struct {
	VocabSize         int // vocab_size
	HiddenSize        int // hidden_size
	IntermediateSize  int // intermediate_size (SwiGLU width)
	NumHiddenLayers   int // num_hidden_layers
	NumAttentionHeads int // num_attention_heads
	// NumKeyValueHeads is num_key_value_heads; 0 means NumAttentionHeads
	// (no grouped-query attention). Use KVHeads for the effective value.
	NumKeyValueHeads int
	// ExplicitHeadDim is head_dim; 0 means HiddenSize/NumAttentionHeads.
	// Use HeadDim for the effective value.
	ExplicitHeadDim int
	// MaxPositionEmbeddings is max_position_embeddings (GaLore configs say
	// max_sequence_length; it is read into this field).
	MaxPositionEmbeddings int
	RMSNormEps            float64 // rms_norm_eps
	// RopeTheta is the RoPE base: rope_parameters.rope_theta (v5) or the
	// top-level rope_theta (v4).
	RopeTheta float64
	// RopeScaling is the RoPE variant: rope_parameters (v5) or rope_scaling
	// (v4). The zero value is the default (unscaled) RoPE.
	RopeScaling       RopeScaling
	TieWordEmbeddings bool    // tie_word_embeddings: lm_head shares embed_tokens
	AttentionBias     bool    // attention_bias: q/k/v/o projections have biases
	MLPBias           bool    // mlp_bias: gate/up/down projections have biases
	HiddenAct         string  // hidden_act; must be "silu" (SwiGLU)
	InitializerRange  float64 // initializer_range (std of the normal init); 0 if absent
	// DType is dtype (v5) or torch_dtype (v4): "float32", "bfloat16",
	// "float16", "float64", or "" if unspecified.
	DType      string
	BOSTokenID *int // bos_token_id; nil if absent or null
	// EOSTokenIDs is eos_token_id: one id, or several (Llama 3 configs list
	// several); nil if absent or null.
	EOSTokenIDs   []int
	PadTokenID    *int     // pad_token_id; nil if absent or null (GaLore writes -1)
	Architectures []string // architectures, e.g. ["LlamaForCausalLM"]
	// Extra holds the keys this type does not model, written back unchanged.
	// A key here that is also modelled is overridden by the field.
	Extra map[string]json.RawMessage

	eosList bool // eos_token_id was written as a list
}

// RopeScaling describes the RoPE frequency scaling.
type RopeScaling struct {
	// Type is rope_type (or the legacy "type"): "" or "default", "linear"
	// or "llama3". Others (dynamic, yarn, longrope, ...) fail validation.
	Type string
	// Factor is the scaling factor (linear and llama3), >= 1.
	Factor float64
	// LowFreqFactor, HighFreqFactor and OriginalMaxPositionEmbeddings are
	// the llama3 parameters (1, 4 and 8192 for Llama 3.1).
	LowFreqFactor                 float64
	HighFreqFactor                float64
	OriginalMaxPositionEmbeddings int
	// Extra holds other keys of rope_parameters / rope_scaling.
	Extra map[string]json.RawMessage
}

// kind returns the normalized rope type.
func (r *RopeScaling) kind() string {
	if r.Type == "" {
		return "default"
	}
	return r.Type
}

// ParseLlama decodes and validates a Llama config.json. Keys left out get
// transformers' defaults (rope_theta 10000, rms_norm_eps 1e-6,
// max_position_embeddings 2048, hidden_act silu, no biases, untied
// embeddings); the sizes (vocab_size, hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads) are required.
func ParseLlama(data []byte) (*LlamaConfig, error) {
	m, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	c, err := llamaFromMap(m)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadLlama reads and validates the Llama config at pathOrDir (a
// config.json file or a directory holding one). Errors name the file and key.
func LoadLlama(pathOrDir string) (*LlamaConfig, error) {
	path := resolve(pathOrDir)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseLlama(data)
	if err != nil {
		return nil, withPath(err, path)
	}
	return c, nil
}

func llamaFromMap(m map[string]json.RawMessage) (*LlamaConfig, error) {
	o := newObject(m)
	var mt string
	if err := o.string("model_type", &mt); err != nil {
		return nil, err
	}
	if mt != "" && mt != "llama" {
		return nil, keyErr("model_type", "%q, want \"llama\"", mt)
	}
	c := &LlamaConfig{
		RMSNormEps:            DefaultLlamaRMSNormEps,
		RopeTheta:             DefaultRopeTheta,
		MaxPositionEmbeddings: DefaultMaxPositionEmbeddings,
		HiddenAct:             "silu",
	}
	for _, k := range []string{"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"} {
		if _, ok := m[k]; !ok {
			return nil, keyErr(k, "missing")
		}
	}
	ints := []struct {
		key string
		dst *int
	}{
		{"vocab_size", &c.VocabSize},
		{"hidden_size", &c.HiddenSize},
		{"intermediate_size", &c.IntermediateSize},
		{"num_hidden_layers", &c.NumHiddenLayers},
		{"num_attention_heads", &c.NumAttentionHeads},
		{"num_key_value_heads", &c.NumKeyValueHeads},
		{"head_dim", &c.ExplicitHeadDim},
	}
	for _, f := range ints {
		if err := o.int(f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if o.present("max_position_embeddings") && o.present("max_sequence_length") {
		var a, b int
		if err := o.int("max_position_embeddings", &a); err != nil {
			return nil, err
		}
		if err := o.int("max_sequence_length", &b); err != nil {
			return nil, err
		}
		if a != b {
			return nil, keyErr("max_sequence_length", "%d disagrees with max_position_embeddings %d", b, a)
		}
		c.MaxPositionEmbeddings = a
	} else {
		if err := o.int("max_position_embeddings", &c.MaxPositionEmbeddings); err != nil {
			return nil, err
		}
		if err := o.int("max_sequence_length", &c.MaxPositionEmbeddings); err != nil {
			return nil, err
		}
	}
	if err := o.float("rms_norm_eps", &c.RMSNormEps); err != nil {
		return nil, err
	}
	if err := o.float("initializer_range", &c.InitializerRange); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{{"tie_word_embeddings", &c.TieWordEmbeddings}, {"attention_bias", &c.AttentionBias}, {"mlp_bias", &c.MLPBias}} {
		if err := o.bool(f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if err := o.string("hidden_act", &c.HiddenAct); err != nil {
		return nil, err
	}
	var err error
	if c.DType, err = parseDType(o); err != nil {
		return nil, err
	}
	if err := o.intPtr("bos_token_id", &c.BOSTokenID); err != nil {
		return nil, err
	}
	if err := o.intPtr("pad_token_id", &c.PadTokenID); err != nil {
		return nil, err
	}
	if raw, ok := o.get("eos_token_id"); ok {
		if s := strings.TrimSpace(string(raw)); strings.HasPrefix(s, "[") {
			var ids []json.RawMessage
			if err := json.Unmarshal(raw, &ids); err != nil {
				return nil, keyErr("eos_token_id", "want an integer or a list of integers, got %s", describe(raw))
			}
			c.EOSTokenIDs = make([]int, len(ids))
			for i, r := range ids {
				if c.EOSTokenIDs[i], err = parseInt("eos_token_id", r); err != nil {
					return nil, err
				}
			}
			c.eosList = true
		} else {
			id, err := parseInt("eos_token_id", raw)
			if err != nil {
				return nil, err
			}
			c.EOSTokenIDs = []int{id}
		}
	}
	if err := o.strings("architectures", &c.Architectures); err != nil {
		return nil, err
	}
	if err := parseRope(o, c); err != nil {
		return nil, err
	}
	c.Extra = o.rest()
	return c, nil
}

// parseRope reads rope_theta, rope_parameters and rope_scaling.
func parseRope(o *object, c *LlamaConfig) error {
	var topTheta float64
	haveTop := false
	if _, ok := o.m["rope_theta"]; ok {
		if err := o.float("rope_theta", &topTheta); err != nil {
			return err
		}
		_, haveTop = o.get("rope_theta")
	}
	if haveTop {
		c.RopeTheta = topTheta
	}
	var params, scaling *RopeScaling
	var paramsTheta *float64
	if raw, ok := o.get("rope_parameters"); ok {
		r, theta, err := parseRopeObject("rope_parameters", raw)
		if err != nil {
			return err
		}
		params, paramsTheta = r, theta
	}
	if raw, ok := o.get("rope_scaling"); ok {
		r, theta, err := parseRopeObject("rope_scaling", raw)
		if err != nil {
			return err
		}
		scaling = r
		if theta != nil && paramsTheta == nil {
			paramsTheta = theta
		}
	}
	if paramsTheta != nil {
		if haveTop && topTheta != *paramsTheta {
			return keyErr("rope_theta", "%v disagrees with rope_parameters.rope_theta %v", topTheta, *paramsTheta)
		}
		c.RopeTheta = *paramsTheta
	}
	switch {
	case params != nil && scaling != nil:
		if params.kind() != scaling.kind() || params.Factor != scaling.Factor {
			return keyErr("rope_scaling", "type %q factor %v disagrees with rope_parameters type %q factor %v",
				scaling.kind(), scaling.Factor, params.kind(), params.Factor)
		}
		c.RopeScaling = *params
	case params != nil:
		c.RopeScaling = *params
	case scaling != nil:
		c.RopeScaling = *scaling
	}
	return nil
}

// parseRopeObject decodes a rope_parameters or rope_scaling object.
func parseRopeObject(key string, raw json.RawMessage) (*RopeScaling, *float64, error) {
	m, err := parseObject(raw)
	if err != nil {
		return nil, nil, keyErr(key, "want an object, got %s", describe(raw))
	}
	o := newObject(m)
	r := &RopeScaling{}
	sub := func(err error) error {
		if e, ok := err.(*Error); ok && e.Key != "" {
			return keyErr(key+"."+e.Key, "%s", e.Msg)
		}
		return err
	}
	var typ, legacy string
	if err := o.string("rope_type", &typ); err != nil {
		return nil, nil, sub(err)
	}
	if err := o.string("type", &legacy); err != nil {
		return nil, nil, sub(err)
	}
	if typ != "" && legacy != "" && typ != legacy {
		return nil, nil, keyErr(key+".type", "%q disagrees with rope_type %q", legacy, typ)
	}
	if typ == "" {
		typ = legacy
	}
	r.Type = typ
	var theta *float64
	if err := o.floatPtr("rope_theta", &theta); err != nil {
		return nil, nil, sub(err)
	}
	for _, f := range []struct {
		key string
		dst *float64
	}{{"factor", &r.Factor}, {"low_freq_factor", &r.LowFreqFactor}, {"high_freq_factor", &r.HighFreqFactor}} {
		if err := o.float(f.key, f.dst); err != nil {
			return nil, nil, sub(err)
		}
	}
	if err := o.int("original_max_position_embeddings", &r.OriginalMaxPositionEmbeddings); err != nil {
		return nil, nil, sub(err)
	}
	r.Extra = o.rest()
	return r, theta, nil
}

// HeadDim returns the attention head size: head_dim if set, else
// hidden_size / num_attention_heads.
func (c *LlamaConfig) HeadDim() int {
	if c.ExplicitHeadDim != 0 {
		return c.ExplicitHeadDim
	}
	if c.NumAttentionHeads == 0 {
		return 0
	}
	return c.HiddenSize / c.NumAttentionHeads
}

// KVHeads returns the number of key/value heads: num_key_value_heads if set,
// else num_attention_heads.
func (c *LlamaConfig) KVHeads() int {
	if c.NumKeyValueHeads != 0 {
		return c.NumKeyValueHeads
	}
	return c.NumAttentionHeads
}

// ModelType returns "llama".
func (c *LlamaConfig) ModelType() string { return "llama" }

// Validate checks the config and returns an *Error naming the first bad key.
func (c *LlamaConfig) Validate() error {
	pos := []struct {
		key string
		v   int
	}{
		{"vocab_size", c.VocabSize},
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return keyErr(p.key, "must be positive, got %d", p.v)
		}
	}
	if c.NumKeyValueHeads < 0 {
		return keyErr("num_key_value_heads", "must be positive, got %d", c.NumKeyValueHeads)
	}
	if kv := c.KVHeads(); c.NumAttentionHeads%kv != 0 {
		return keyErr("num_key_value_heads", "%d does not divide num_attention_heads %d", kv, c.NumAttentionHeads)
	}
	if c.ExplicitHeadDim < 0 {
		return keyErr("head_dim", "must be positive, got %d", c.ExplicitHeadDim)
	}
	if c.ExplicitHeadDim == 0 && c.HiddenSize%c.NumAttentionHeads != 0 {
		return keyErr("num_attention_heads", "%d does not divide hidden_size %d (and head_dim is not set)", c.NumAttentionHeads, c.HiddenSize)
	}
	if hd := c.HeadDim(); hd%2 != 0 {
		return keyErr("head_dim", "%d is odd; RoPE needs an even head size", hd)
	}
	if !(c.RMSNormEps > 0) {
		return keyErr("rms_norm_eps", "must be positive, got %v", c.RMSNormEps)
	}
	if c.InitializerRange < 0 {
		return keyErr("initializer_range", "must not be negative, got %v", c.InitializerRange)
	}
	if c.HiddenAct != "silu" && c.HiddenAct != "swish" {
		return keyErr("hidden_act", "%q is not supported (Llama uses SwiGLU: \"silu\")", c.HiddenAct)
	}
	if err := checkDType(c.DType); err != nil {
		return err
	}
	if err := c.validateRope(); err != nil {
		return err
	}
	if c.BOSTokenID != nil && (*c.BOSTokenID < 0 || *c.BOSTokenID >= c.VocabSize) {
		return keyErr("bos_token_id", "%d is outside the vocabulary [0, %d)", *c.BOSTokenID, c.VocabSize)
	}
	for _, id := range c.EOSTokenIDs {
		if id < 0 || id >= c.VocabSize {
			return keyErr("eos_token_id", "%d is outside the vocabulary [0, %d)", id, c.VocabSize)
		}
	}
	if c.PadTokenID != nil && *c.PadTokenID >= c.VocabSize {
		return keyErr("pad_token_id", "%d is outside the vocabulary [0, %d)", *c.PadTokenID, c.VocabSize)
	}
	return nil
}

// ropeKey is the key under which RoPE problems are reported.
const ropeKey = "rope_parameters"

func (c *LlamaConfig) validateRope() error {
	if !(c.RopeTheta > 0) {
		return keyErr("rope_theta", "must be positive, got %v", c.RopeTheta)
	}
	r := &c.RopeScaling
	switch r.kind() {
	case "default":
		return nil
	case "linear":
		if !(r.Factor >= 1) {
			return keyErr(ropeKey+".factor", "linear RoPE scaling needs factor >= 1, got %v", r.Factor)
		}
		return nil
	case "llama3":
		switch {
		case !(r.Factor >= 1):
			return keyErr(ropeKey+".factor", "llama3 RoPE scaling needs factor >= 1, got %v", r.Factor)
		case !(r.LowFreqFactor > 0):
			return keyErr(ropeKey+".low_freq_factor", "llama3 RoPE scaling needs low_freq_factor > 0, got %v", r.LowFreqFactor)
		case !(r.HighFreqFactor > r.LowFreqFactor):
			return keyErr(ropeKey+".high_freq_factor", "llama3 RoPE scaling needs high_freq_factor > low_freq_factor (%v), got %v", r.LowFreqFactor, r.HighFreqFactor)
		case r.OriginalMaxPositionEmbeddings <= 0:
			return keyErr(ropeKey+".original_max_position_embeddings", "llama3 RoPE scaling needs a positive original_max_position_embeddings, got %d", r.OriginalMaxPositionEmbeddings)
		}
		return nil
	}
	return keyErr(ropeKey+".rope_type", "%q is not supported (supported: default, linear, llama3)", r.Type)
}

// Map returns the config as the key/value map Marshal writes.
func (c *LlamaConfig) Map() map[string]any {
	out := make(map[string]any, 32)
	for k, v := range c.Extra {
		out[k] = v
	}
	if c.Architectures != nil {
		out["architectures"] = c.Architectures
	}
	out["model_type"] = "llama"
	out["vocab_size"] = c.VocabSize
	out["hidden_size"] = c.HiddenSize
	out["intermediate_size"] = c.IntermediateSize
	out["num_hidden_layers"] = c.NumHiddenLayers
	out["num_attention_heads"] = c.NumAttentionHeads
	out["num_key_value_heads"] = c.KVHeads()
	out["head_dim"] = c.HeadDim()
	out["max_position_embeddings"] = c.MaxPositionEmbeddings
	out["rms_norm_eps"] = pyFloat(c.RMSNormEps)
	out["tie_word_embeddings"] = c.TieWordEmbeddings
	out["attention_bias"] = c.AttentionBias
	out["mlp_bias"] = c.MLPBias
	out["hidden_act"] = c.HiddenAct
	if c.InitializerRange != 0 {
		out["initializer_range"] = pyFloat(c.InitializerRange)
	}
	if c.DType != "" {
		out["dtype"] = c.DType
	}
	if c.BOSTokenID != nil {
		out["bos_token_id"] = *c.BOSTokenID
	}
	switch {
	case len(c.EOSTokenIDs) == 1 && !c.eosList:
		out["eos_token_id"] = c.EOSTokenIDs[0]
	case c.EOSTokenIDs != nil:
		out["eos_token_id"] = c.EOSTokenIDs
	}
	if c.PadTokenID != nil {
		out["pad_token_id"] = *c.PadTokenID
	} else {
		out["pad_token_id"] = nil
	}
	rp := make(map[string]any, 8)
	for k, v := range c.RopeScaling.Extra {
		rp[k] = v
	}
	rp["rope_theta"] = pyFloat(c.RopeTheta)
	rp["rope_type"] = c.RopeScaling.kind()
	switch c.RopeScaling.kind() {
	case "linear":
		rp["factor"] = pyFloat(c.RopeScaling.Factor)
	case "llama3":
		rp["factor"] = pyFloat(c.RopeScaling.Factor)
		rp["low_freq_factor"] = pyFloat(c.RopeScaling.LowFreqFactor)
		rp["high_freq_factor"] = pyFloat(c.RopeScaling.HighFreqFactor)
		rp["original_max_position_embeddings"] = c.RopeScaling.OriginalMaxPositionEmbeddings
	}
	out["rope_parameters"] = rp
	return out
}

// Marshal returns the config as transformers v5 writes config.json: sorted
// keys, two-space indent, Python float formatting, dtype and
// rope_parameters (never the v4 torch_dtype, rope_theta or rope_scaling),
// plus the Extra keys. It validates first.
func (c *LlamaConfig) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return marshalConfig(c.Map())
}

// Save writes the config to dir/config.json (creating dir), replacing any
// existing file atomically.
func (c *LlamaConfig) Save(dir string) error {
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	return writeFile(dir, data)
}

// NumParams is the number of parameters of a LlamaForCausalLM with this configuration,
// as a float64 (absurd configurations overflow no integer); computed without building
// the model, so that a size can be checked before anything is allocated.
func (c *LlamaConfig) NumParams() float64 {
	D, I, V := float64(c.HiddenSize), float64(c.IntermediateSize), float64(c.VocabSize)
	hd := float64(c.HeadDim())
	nh, nkv := float64(c.NumAttentionHeads), float64(c.KVHeads())
	layer := 2*D + nh*hd*D*2 + nkv*hd*D*2 + 3*I*D
	if c.AttentionBias {
		layer += nh*hd + 2*nkv*hd + D
	}
	if c.MLPBias {
		layer += 2*I + D
	}
	n := V*D + float64(c.NumHiddenLayers)*layer + D
	if !c.TieWordEmbeddings {
		n += V * D
	}
	return n
}
