package config

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
)

// Problem types of sequence-classification heads (transformers'
// problem_type).
const (
	Regression                = "regression"
	SingleLabelClassification = "single_label_classification"
	MultiLabelClassification  = "multi_label_classification"
)

// RobertaConfig is a RoBERTa config.json (RobertaForSequenceClassification).
// Field comments give the JSON key. Configs from ParseRoberta have their
// defaults filled in.
type RobertaConfig struct {
	VocabSize             int     // vocab_size
	HiddenSize            int     // hidden_size
	NumHiddenLayers       int     // num_hidden_layers
	NumAttentionHeads     int     // num_attention_heads
	IntermediateSize      int     // intermediate_size
	MaxPositionEmbeddings int     // max_position_embeddings (514 for roberta-base: 512 tokens + pad offset)
	TypeVocabSize         int     // type_vocab_size (1 for roberta-base; default 2)
	LayerNormEps          float64 // layer_norm_eps (default 1e-12)
	HiddenAct             string  // hidden_act (default "gelu", exact erf GELU)
	HiddenDropoutProb     float64 // hidden_dropout_prob (default 0.1)
	// AttentionProbsDropoutProb is attention_probs_dropout_prob (default 0.1).
	AttentionProbsDropoutProb float64
	// ClassifierDropout is classifier_dropout; nil means use
	// HiddenDropoutProb, as transformers does.
	ClassifierDropout *float64
	InitializerRange  float64 // initializer_range (default 0.02)
	// PadTokenID is pad_token_id (default 1). Position ids start at
	// PadTokenID+1.
	PadTokenID int
	BOSTokenID *int // bos_token_id
	EOSTokenID *int // eos_token_id
	// PositionEmbeddingType is position_embedding_type; "" (absent) or
	// "absolute", the only type supported.
	PositionEmbeddingType string
	// ID2Label is id2label with integer keys; nil if the config has none
	// (then NumLabels is num_labels, or 2).
	ID2Label map[int]string
	// Label2ID is label2id; nil if absent.
	Label2ID map[string]int
	// ExplicitNumLabels is num_labels if the config states it (transformers
	// itself writes id2label instead); 0 if absent.
	ExplicitNumLabels int
	// ProblemType is problem_type: "", Regression, SingleLabelClassification
	// or MultiLabelClassification.
	ProblemType   string
	DType         string   // dtype (v5) or torch_dtype (v4); "" if unspecified
	Architectures []string // architectures, e.g. ["RobertaForSequenceClassification"]
	// Extra holds the keys this type does not model, written back unchanged.
	Extra map[string]json.RawMessage
}

// ParseRoberta decodes and validates a RoBERTa config.json. The sizes
// (vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
// intermediate_size) are required; other keys get transformers' defaults.
func ParseRoberta(data []byte) (*RobertaConfig, error) {
	m, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	c, err := robertaFromMap(m)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadRoberta reads and validates the RoBERTa config at pathOrDir (a
// config.json file or a directory holding one).
func LoadRoberta(pathOrDir string) (*RobertaConfig, error) {
	path := resolve(pathOrDir)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseRoberta(data)
	if err != nil {
		return nil, withPath(err, path)
	}
	return c, nil
}

func robertaFromMap(m map[string]json.RawMessage) (*RobertaConfig, error) {
	o := newObject(m)
	var mt string
	if err := o.string("model_type", &mt); err != nil {
		return nil, err
	}
	if mt != "" && mt != "roberta" {
		return nil, keyErr("model_type", "%q, want \"roberta\"", mt)
	}
	for _, k := range []string{"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"} {
		if _, ok := m[k]; !ok {
			return nil, keyErr(k, "missing")
		}
	}
	c := &RobertaConfig{
		MaxPositionEmbeddings:     512,
		TypeVocabSize:             2,
		LayerNormEps:              1e-12,
		HiddenAct:                 "gelu",
		HiddenDropoutProb:         0.1,
		AttentionProbsDropoutProb: 0.1,
		InitializerRange:          0.02,
		PadTokenID:                1,
	}
	for _, f := range []struct {
		key string
		dst *int
	}{
		{"vocab_size", &c.VocabSize},
		{"hidden_size", &c.HiddenSize},
		{"num_hidden_layers", &c.NumHiddenLayers},
		{"num_attention_heads", &c.NumAttentionHeads},
		{"intermediate_size", &c.IntermediateSize},
		{"max_position_embeddings", &c.MaxPositionEmbeddings},
		{"type_vocab_size", &c.TypeVocabSize},
		{"num_labels", &c.ExplicitNumLabels},
	} {
		if err := o.int(f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if o.present("num_labels") && c.ExplicitNumLabels == 0 {
		if _, ok := o.get("num_labels"); ok {
			return nil, keyErr("num_labels", "must be positive, got 0")
		}
	}
	for _, f := range []struct {
		key string
		dst *float64
	}{
		{"layer_norm_eps", &c.LayerNormEps},
		{"hidden_dropout_prob", &c.HiddenDropoutProb},
		{"attention_probs_dropout_prob", &c.AttentionProbsDropoutProb},
		{"initializer_range", &c.InitializerRange},
	} {
		if err := o.float(f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if err := o.floatPtr("classifier_dropout", &c.ClassifierDropout); err != nil {
		return nil, err
	}
	if o.present("pad_token_id") {
		if _, ok := o.get("pad_token_id"); !ok {
			return nil, keyErr("pad_token_id", "is null; RoBERTa needs a padding id (position ids count from it)")
		}
	}
	if err := o.int("pad_token_id", &c.PadTokenID); err != nil {
		return nil, err
	}
	if err := o.intPtr("bos_token_id", &c.BOSTokenID); err != nil {
		return nil, err
	}
	if err := o.intPtr("eos_token_id", &c.EOSTokenID); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"hidden_act", &c.HiddenAct}, {"position_embedding_type", &c.PositionEmbeddingType}, {"problem_type", &c.ProblemType}} {
		if err := o.string(f.key, f.dst); err != nil {
			return nil, err
		}
	}
	var err error
	if c.DType, err = parseDType(o); err != nil {
		return nil, err
	}
	if err := o.strings("architectures", &c.Architectures); err != nil {
		return nil, err
	}
	if raw, ok := o.get("id2label"); ok {
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, keyErr("id2label", "want an object of label index to name, got %s", describe(raw))
		}
		c.ID2Label = make(map[int]string, len(m))
		for k, v := range m {
			id, err := strconv.Atoi(k)
			if err != nil {
				return nil, keyErr("id2label", "key %q is not an integer", k)
			}
			c.ID2Label[id] = v
		}
	}
	if raw, ok := o.get("label2id"); ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, keyErr("label2id", "want an object of label name to index, got %s", describe(raw))
		}
		c.Label2ID = make(map[string]int, len(m))
		for k, v := range m {
			id, err := parseInt("label2id", v)
			if err != nil {
				return nil, keyErr("label2id", "value of %q: want an integer, got %s", k, describe(v))
			}
			c.Label2ID[k] = id
		}
	}
	c.Extra = o.rest()
	return c, nil
}

// NumLabels returns the number of outputs of the classification head:
// len(id2label) if present, else num_labels, else 2 (transformers' default).
func (c *RobertaConfig) NumLabels() int {
	switch {
	case c.ID2Label != nil:
		return len(c.ID2Label)
	case c.ExplicitNumLabels > 0:
		return c.ExplicitNumLabels
	}
	return 2
}

// IsRegression reports whether the head is trained as regression (MSE loss
// on the logits): problem_type "regression", or no problem_type and one
// label, as in transformers.
func (c *RobertaConfig) IsRegression() bool {
	return c.ProblemType == Regression || (c.ProblemType == "" && c.NumLabels() == 1)
}

// IsMultiLabel reports whether problem_type is multi_label_classification
// (BCE-with-logits loss).
func (c *RobertaConfig) IsMultiLabel() bool { return c.ProblemType == MultiLabelClassification }

// SetLabels sets id2label to names (index i is label i) and label2id to its
// inverse. One name makes a regression head.
func (c *RobertaConfig) SetLabels(names ...string) {
	c.ID2Label = make(map[int]string, len(names))
	c.Label2ID = make(map[string]int, len(names))
	for i, n := range names {
		c.ID2Label[i] = n
		c.Label2ID[n] = i
	}
	c.ExplicitNumLabels = 0
}

// SetNumLabels sets n labels named LABEL_0 ... LABEL_{n-1}, as transformers
// does for num_labels=n. n must be positive.
func (c *RobertaConfig) SetNumLabels(n int) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("LABEL_%d", i)
	}
	c.SetLabels(names...)
}

// ModelType returns "roberta".
func (c *RobertaConfig) ModelType() string { return "roberta" }

// Validate checks the config and returns an *Error naming the first bad key.
func (c *RobertaConfig) Validate() error {
	for _, p := range []struct {
		key string
		v   int
	}{
		{"vocab_size", c.VocabSize},
		{"hidden_size", c.HiddenSize},
		{"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads},
		{"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
		{"type_vocab_size", c.TypeVocabSize},
	} {
		if p.v <= 0 {
			return keyErr(p.key, "must be positive, got %d", p.v)
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return keyErr("num_attention_heads", "%d does not divide hidden_size %d", c.NumAttentionHeads, c.HiddenSize)
	}
	if c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize {
		return keyErr("pad_token_id", "%d is outside the vocabulary [0, %d)", c.PadTokenID, c.VocabSize)
	}
	if c.MaxPositionEmbeddings <= c.PadTokenID+1 {
		return keyErr("max_position_embeddings", "%d leaves no positions after the padding offset pad_token_id+1 = %d",
			c.MaxPositionEmbeddings, c.PadTokenID+1)
	}
	for _, f := range []struct {
		key string
		id  *int
	}{{"bos_token_id", c.BOSTokenID}, {"eos_token_id", c.EOSTokenID}} {
		if f.id != nil && (*f.id < 0 || *f.id >= c.VocabSize) {
			return keyErr(f.key, "%d is outside the vocabulary [0, %d)", *f.id, c.VocabSize)
		}
	}
	if !(c.LayerNormEps > 0) {
		return keyErr("layer_norm_eps", "must be positive, got %v", c.LayerNormEps)
	}
	for _, p := range []struct {
		key string
		v   float64
	}{{"hidden_dropout_prob", c.HiddenDropoutProb}, {"attention_probs_dropout_prob", c.AttentionProbsDropoutProb}} {
		if !(p.v >= 0 && p.v < 1) {
			return keyErr(p.key, "must be in [0, 1), got %v", p.v)
		}
	}
	if c.ClassifierDropout != nil && !(*c.ClassifierDropout >= 0 && *c.ClassifierDropout < 1) {
		return keyErr("classifier_dropout", "must be in [0, 1), got %v", *c.ClassifierDropout)
	}
	if c.InitializerRange < 0 {
		return keyErr("initializer_range", "must not be negative, got %v", c.InitializerRange)
	}
	switch c.HiddenAct {
	case "gelu", "relu", "silu", "swish", "gelu_new", "gelu_pytorch_tanh", "tanh":
	default:
		return keyErr("hidden_act", "unknown activation %q", c.HiddenAct)
	}
	if c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute" {
		return keyErr("position_embedding_type", "%q is not supported (only \"absolute\")", c.PositionEmbeddingType)
	}
	switch c.ProblemType {
	case "", Regression, SingleLabelClassification, MultiLabelClassification:
	default:
		return keyErr("problem_type", "unknown problem type %q (want %s, %s or %s)", c.ProblemType,
			Regression, SingleLabelClassification, MultiLabelClassification)
	}
	if c.ExplicitNumLabels < 0 {
		return keyErr("num_labels", "must be positive, got %d", c.ExplicitNumLabels)
	}
	if c.ID2Label != nil {
		n := len(c.ID2Label)
		if n == 0 {
			return keyErr("id2label", "is empty")
		}
		for i := 0; i < n; i++ {
			if _, ok := c.ID2Label[i]; !ok {
				return keyErr("id2label", "%d labels but no label %d (keys must be 0..%d)", n, i, n-1)
			}
		}
		if c.ExplicitNumLabels != 0 && c.ExplicitNumLabels != n {
			return keyErr("num_labels", "%d disagrees with id2label's %d labels", c.ExplicitNumLabels, n)
		}
	}
	if c.Label2ID != nil {
		n := c.NumLabels()
		if len(c.Label2ID) != n {
			return keyErr("label2id", "has %d labels, want %d", len(c.Label2ID), n)
		}
		for _, name := range sortedKeys(c.Label2ID) {
			id := c.Label2ID[name]
			if id < 0 || id >= n {
				return keyErr("label2id", "label %q has index %d outside [0, %d)", name, id, n)
			}
			if c.ID2Label != nil && c.ID2Label[id] != name {
				return keyErr("label2id", "label %q has index %d but id2label[%d] is %q", name, id, id, c.ID2Label[id])
			}
		}
	}
	if c.ProblemType == Regression && c.NumLabels() != 1 && c.ID2Label == nil && c.ExplicitNumLabels == 0 {
		return keyErr("problem_type", "regression needs num_labels (or id2label); the default is 2 labels")
	}
	return checkDType(c.DType)
}

// Map returns the config as the key/value map Marshal writes.
func (c *RobertaConfig) Map() map[string]any {
	out := make(map[string]any, 32)
	for k, v := range c.Extra {
		out[k] = v
	}
	if c.Architectures != nil {
		out["architectures"] = c.Architectures
	}
	out["model_type"] = "roberta"
	out["vocab_size"] = c.VocabSize
	out["hidden_size"] = c.HiddenSize
	out["num_hidden_layers"] = c.NumHiddenLayers
	out["num_attention_heads"] = c.NumAttentionHeads
	out["intermediate_size"] = c.IntermediateSize
	out["max_position_embeddings"] = c.MaxPositionEmbeddings
	out["type_vocab_size"] = c.TypeVocabSize
	out["layer_norm_eps"] = pyFloat(c.LayerNormEps)
	out["hidden_act"] = c.HiddenAct
	out["hidden_dropout_prob"] = pyFloat(c.HiddenDropoutProb)
	out["attention_probs_dropout_prob"] = pyFloat(c.AttentionProbsDropoutProb)
	if c.ClassifierDropout != nil {
		out["classifier_dropout"] = pyFloat(*c.ClassifierDropout)
	} else {
		out["classifier_dropout"] = nil
	}
	out["initializer_range"] = pyFloat(c.InitializerRange)
	out["pad_token_id"] = c.PadTokenID
	if c.BOSTokenID != nil {
		out["bos_token_id"] = *c.BOSTokenID
	}
	if c.EOSTokenID != nil {
		out["eos_token_id"] = *c.EOSTokenID
	}
	if c.PositionEmbeddingType != "" {
		out["position_embedding_type"] = c.PositionEmbeddingType
	}
	if c.ID2Label != nil {
		ids := make([]int, 0, len(c.ID2Label))
		for id := range c.ID2Label {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		m := make(map[string]string, len(ids))
		for _, id := range ids {
			m[strconv.Itoa(id)] = c.ID2Label[id]
		}
		out["id2label"] = m
	}
	if c.Label2ID != nil {
		out["label2id"] = c.Label2ID
	}
	if c.ExplicitNumLabels != 0 && c.ID2Label == nil {
		out["num_labels"] = c.ExplicitNumLabels
	}
	if c.ProblemType != "" {
		out["problem_type"] = c.ProblemType
	}
	if c.DType != "" {
		out["dtype"] = c.DType
	}
	return out
}

// Marshal returns the config as transformers v5 writes config.json (sorted
// keys, two-space indent, Python float formatting, dtype rather than
// torch_dtype), plus the Extra keys. It validates first.
func (c *RobertaConfig) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return marshalConfig(c.Map())
}

// Save writes the config to dir/config.json (creating dir), replacing any
// existing file atomically.
func (c *RobertaConfig) Save(dir string) error {
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	return writeFile(dir, data)
}

// NumParams is the number of parameters of a RobertaForSequenceClassification with this
// configuration, as a float64; computed without building the model.
func (c *RobertaConfig) NumParams() float64 {
	D, I, V := float64(c.HiddenSize), float64(c.IntermediateSize), float64(c.VocabSize)
	P, TV, NL := float64(c.MaxPositionEmbeddings), float64(c.TypeVocabSize), float64(c.NumLabels())
	layer := 4*(D*D+D) + 2*D + I*D + I + D*I + D + 2*D
	return V*D + P*D + TV*D + 2*D + float64(c.NumHiddenLayers)*layer + D*D + D + NL*D + NL
}
