package llama

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

// Classifier is LlamaForSequenceClassification: the decoder, then a bias-free linear
// "score" head applied to the last real token of each sequence (the last position whose
// attention mask is 1; without a mask, the last token that is not pad_token_id; else the
// last position). It implements nn.Model.
type Classifier struct {
	*Model
	Score *nn.Param
	// Labels are the class names (id2label order); one label means regression.
	Labels []string
	// Problem is config.json's problem_type ("" lets the labels' dtype decide).
	Problem string
	// NewlyInitialized lists parameters that were not in the checkpoint.
	NewlyInitialized []string
}

// NumLabels is the number of outputs of the score head (1: regression).
func (c *Classifier) NumLabels() int { return len(c.Labels) }

func classifierSpecs(c *config.LlamaConfig, numLabels int) []nn.Spec {
	var out []nn.Spec
	for _, sp := range specs(c) {
		if sp.Name != "lm_head.weight" {
			out = append(out, sp)
		}
	}
	std := c.InitializerRange
	if std == 0 {
		std = 0.02
	}
	return append(out, nn.Spec{Name: "score.weight", Shape: []int64{int64(numLabels), int64(c.HiddenSize)}, Layer: -1,
		Head: true, Init: nn.InitNormal, Std: std})
}

// labelsFromConfig reads id2label (or num_labels) and problem_type kept in the config's
// extra keys; nil when the config has none.
func labelsFromConfig(c *config.LlamaConfig) ([]string, string, error) {
	var problem string
	if raw, ok := c.Extra["problem_type"]; ok {
		_ = json.Unmarshal(raw, &problem)
	}
	if raw, ok := c.Extra["id2label"]; ok {
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, "", fmt.Errorf("llama: config key \"id2label\": %w", err)
		}
		labels := make([]string, len(m))
		for k, v := range m {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(m) {
				return nil, "", fmt.Errorf("llama: config key \"id2label\": bad id %q", k)
			}
			labels[i] = v
		}
		return labels, problem, nil
	}
	if raw, ok := c.Extra["num_labels"]; ok {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil || n < 1 {
			return nil, "", fmt.Errorf("llama: config key \"num_labels\": want a positive integer")
		}
		return defaultLabels(n), problem, nil
	}
	return nil, problem, nil
}

func defaultLabels(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "LABEL_" + strconv.Itoa(i)
	}
	return out
}

// NewClassifier creates a randomly initialised classifier with the given labels (one
// label: regression).
func NewClassifier(c *config.LlamaConfig, o Options, labels []string, seed uint64) (*Classifier, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("llama: a classifier needs at least one label")
	}
	m, err := newModel(c, o)
	if err != nil {
		return nil, err
	}
	if err := m.InitSeeded(classifierSpecs(c, len(labels)), m.DType, o.Device, seed); err != nil {
		m.Close()
		return nil, fmt.Errorf("llama: init: %w", err)
	}
	m.bind()
	return &Classifier{Model: m, Score: m.Get("score.weight"), Labels: labels}, nil
}

// LoadClassifier loads a LlamaForSequenceClassification checkpoint, or a causal-LM
// checkpoint (its lm_head is dropped) with a new score head. labels, when given,
// override the checkpoint's; a score head of another size is initialised anew, as
// transformers does when fine-tuning.
func LoadClassifier(dir string, o Options, labels []string, seed uint64) (*Classifier, error) {
	c, err := config.LoadLlama(dir)
	if err != nil {
		return nil, err
	}
	saved, problem, err := labelsFromConfig(c)
	if err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		labels = saved
	}
	if len(labels) == 0 {
		labels = defaultLabels(2)
	}
	m, err := newModel(c, o)
	if err != nil {
		return nil, err
	}
	src, err := safetensors.OpenModel(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("llama: %w", err)
	}
	headFits := false
	if info, ok := src.Info("score.weight"); ok && len(info.Shape) == 2 && info.Shape[0] == int64(len(labels)) {
		headFits = true
	}
	src.Close()
	g := torch.NewGenerator(seed, torch.CPU)
	defer g.Close()
	lo := nn.LoadOptions{
		Ignore: func(k string) bool {
			return strings.HasSuffix(k, "rotary_emb.inv_freq") || k == "lm_head.weight"
		},
		InitMissing: func(n string) bool { return n == "score.weight" },
		Fresh:       func(n string) bool { return !headFits && n == "score.weight" },
		Gen:         g,
	}
	fresh, err := m.LoadParams(dir, classifierSpecs(c, len(labels)), m.DType, o.Device, lo)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("llama: loading %s: %w", dir, err)
	}
	m.srcDir = dir
	m.bind()
	if !headFits {
		problem = ""
	}
	return &Classifier{Model: m, Score: m.Get("score.weight"), Labels: labels, Problem: problem, NewlyInitialized: fresh}, nil
}

// Forward returns logits [B, num_labels] pooled at each sequence's last real token and,
// with labels, transformers' classification loss (MSE for one label, cross-entropy for
// integer labels, BCE with logits for multi-label float targets).
func (c *Classifier) Forward(s *torch.Scope, b *nn.Batch, train bool) (out *nn.Output, err error) {
	err = torch.Try(func() {
		h := c.hidden(s, b, train)               // [B, T, D]
		logits := h.Linear(c.W(s, c.Score), nil) // [B, T, NL]
		B, T, NL := logits.Size(0), logits.Size(1), logits.Size(2)
		dev := c.Opts.Device
		pos := s.Arange(0, float64(T), 1, torch.I64, dev).Unsqueeze(0) // [1, T]
		var idx *torch.Tensor
		switch {
		case b.AttentionMask != nil:
			idx = s.In(b.AttentionMask).ToDevice(torch.I64, dev).Mul(pos).Argmax(-1, false)
		case c.Cfg.PadTokenID != nil && *c.Cfg.PadTokenID >= 0:
			real := s.In(b.InputIDs).ToDevice(torch.I64, dev).NeScalar(float64(*c.Cfg.PadTokenID)).To(torch.I64)
			idx = real.Mul(pos).Argmax(-1, false)
		default:
			idx = s.Full([]int64{B}, float64(T-1), torch.I64, dev)
		}
		pooled := logits.Gather(1, idx.View(B, 1, 1).Expand(B, 1, NL)).Squeeze(1) // [B, NL]
		out = &nn.Output{Logits: pooled}
		if b.Labels != nil {
			problem := c.Problem
			if len(c.Labels) == 1 {
				problem = nn.ProblemRegression
			}
			out.Loss = nn.ClassificationLoss(pooled, s.In(b.Labels), len(c.Labels), problem, dev)
		}
	})
	return out, err
}

// Save writes config.json (architectures LlamaForSequenceClassification, id2label,
// label2id, problem_type), the weights and the tokenizer files.
func (c *Classifier) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("llama: %w", err)
	}
	cfg := *c.Cfg
	cfg.DType = nn.ConfigDType(c.DType)
	cfg.Architectures = []string{"LlamaForSequenceClassification"}
	cfg.Extra = map[string]json.RawMessage{}
	for k, v := range c.Cfg.Extra {
		cfg.Extra[k] = v
	}
	id2, l2id := map[string]string{}, map[string]int{}
	for i, l := range c.Labels {
		id2[strconv.Itoa(i)] = l
		l2id[l] = i
	}
	put := func(k string, v any) {
		b, _ := json.Marshal(v)
		cfg.Extra[k] = b
	}
	put("id2label", id2)
	put("label2id", l2id)
	delete(cfg.Extra, "num_labels")
	problem := c.Problem
	if len(c.Labels) == 1 {
		problem = nn.ProblemRegression
	}
	if problem != "" {
		put("problem_type", problem)
	}
	if err := cfg.Save(dir); err != nil {
		return err
	}
	if err := c.SaveParams(dir, c.DType, c.Opts.MaxShardBytes); err != nil {
		return fmt.Errorf("llama: saving %s: %w", dir, err)
	}
	return nn.CopyTokenizer(c.srcDir, dir)
}
