// Package roberta is Hugging Face's RobertaForSequenceClassification (and the
// RobertaModel encoder inside it) in Go over libtorch: the same parameter names
// ("LayerNorm" with a capital L), position ids counted from pad_token_id+1 over non-pad
// tokens, exact GELU, and the classification head on the first token (dense, tanh,
// out_proj). num_labels == 1 is regression (MSE loss).
package roberta

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

// Options choose how a model is materialised.
type Options struct {
	// DType of the weights; 0 means the config's dtype, or f32.
	DType torch.DType
	// Device for weights and activations.
	Device torch.Device
	// FusedSDPA uses libtorch's fused attention where available.
	FusedSDPA bool
	// NumLabels overrides the config's label count (a new head is initialised when
	// the checkpoint's head does not fit, as when fine-tuning roberta-base).
	NumLabels int
	// Seed for newly initialised parameters (a missing classification head).
	Seed uint64
	// MaxShardBytes for Save (0: 5 GB).
	MaxShardBytes int64
}

// Layer is one encoder layer's parameters.
type Layer struct {
	Q, QB, K, KB, V, VB *nn.Param
	AttnOut, AttnOutB   *nn.Param
	AttnNorm, AttnNormB *nn.Param
	Inter, InterB       *nn.Param
	Out, OutB           *nn.Param
	OutNorm, OutNormB   *nn.Param
}

// Model is RobertaForSequenceClassification. It implements nn.Model.
type Model struct {
	*nn.Params
	Cfg   *config.RobertaConfig
	Opts  Options
	DType torch.DType
	// NewlyInitialized lists parameters that were not in the checkpoint (a new head).
	NewlyInitialized []string

	WordEmb, PosEmb, TypeEmb, EmbNorm, EmbNormB *nn.Param
	Layers                                      []Layer
	ClsDense, ClsDenseB, ClsOut, ClsOutB        *nn.Param
	srcDir                                      string
}

// NumLabels is the number of outputs of the classification head (1: regression).
func (m *Model) NumLabels() int { return m.Cfg.NumLabels() }

func specs(c *config.RobertaConfig) []nn.Spec {
	D, I, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	P, TV, NL := int64(c.MaxPositionEmbeddings), int64(c.TypeVocabSize), int64(c.NumLabels())
	std := c.InitializerRange
	var out []nn.Spec
	add := func(name string, shape []int64, layer int, init nn.InitKind, head, embed bool) {
		out = append(out, nn.Spec{Name: name, Shape: shape, Layer: layer, Init: init, Std: std, Head: head, Embed: embed})
	}
	add("roberta.embeddings.word_embeddings.weight", []int64{V, D}, -1, nn.InitNormal, false, true)
	add("roberta.embeddings.position_embeddings.weight", []int64{P, D}, -1, nn.InitNormal, false, true)
	add("roberta.embeddings.token_type_embeddings.weight", []int64{TV, D}, -1, nn.InitNormal, false, true)
	add("roberta.embeddings.LayerNorm.weight", []int64{D}, -1, nn.InitOnes, false, false)
	add("roberta.embeddings.LayerNorm.bias", []int64{D}, -1, nn.InitZeros, false, false)
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("roberta.encoder.layer.%d.", i)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			add(p+n+".weight", []int64{D, D}, i, nn.InitNormal, false, false)
			add(p+n+".bias", []int64{D}, i, nn.InitZeros, false, false)
		}
		add(p+"attention.output.LayerNorm.weight", []int64{D}, i, nn.InitOnes, false, false)
		add(p+"attention.output.LayerNorm.bias", []int64{D}, i, nn.InitZeros, false, false)
		add(p+"intermediate.dense.weight", []int64{I, D}, i, nn.InitNormal, false, false)
		add(p+"intermediate.dense.bias", []int64{I}, i, nn.InitZeros, false, false)
		add(p+"output.dense.weight", []int64{D, I}, i, nn.InitNormal, false, false)
		add(p+"output.dense.bias", []int64{D}, i, nn.InitZeros, false, false)
		add(p+"output.LayerNorm.weight", []int64{D}, i, nn.InitOnes, false, false)
		add(p+"output.LayerNorm.bias", []int64{D}, i, nn.InitZeros, false, false)
	}
	add("classifier.dense.weight", []int64{D, D}, -1, nn.InitNormal, true, false)
	add("classifier.dense.bias", []int64{D}, -1, nn.InitZeros, true, false)
	add("classifier.out_proj.weight", []int64{NL, D}, -1, nn.InitNormal, true, false)
	add("classifier.out_proj.bias", []int64{NL}, -1, nn.InitZeros, true, false)
	return out
}

func newModel(c *config.RobertaConfig, o Options) (*Model, error) {
	if c == nil {
		return nil, errors.New("roberta: nil config")
	}
	if c.HiddenAct != "" && c.HiddenAct != "gelu" {
		return nil, fmt.Errorf("roberta: hidden_act %q is not supported (want gelu)", c.HiddenAct)
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return nil, fmt.Errorf("roberta: hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if o.NumLabels > 0 && o.NumLabels != c.NumLabels() {
		cc := *c
		cc.SetNumLabels(o.NumLabels)
		c = &cc
	}
	if err := torch.Init(); err != nil {
		return nil, err
	}
	dt := o.DType
	if dt == 0 {
		var err error
		if dt, err = nn.DTypeFromConfig(c.DType); err != nil {
			return nil, fmt.Errorf("roberta: config dtype: %w", err)
		}
	}
	if err := nn.CheckFits("roberta", c.NumParams(), dt, o.Device); err != nil {
		return nil, err
	}
	return &Model{Params: nn.NewParams("roberta"), Cfg: c, Opts: o, DType: dt}, nil
}

func (m *Model) bind() {
	m.WordEmb = m.Get("roberta.embeddings.word_embeddings.weight")
	m.PosEmb = m.Get("roberta.embeddings.position_embeddings.weight")
	m.TypeEmb = m.Get("roberta.embeddings.token_type_embeddings.weight")
	m.EmbNorm = m.Get("roberta.embeddings.LayerNorm.weight")
	m.EmbNormB = m.Get("roberta.embeddings.LayerNorm.bias")
	m.Layers = make([]Layer, m.Cfg.NumHiddenLayers)
	for i := range m.Layers {
		p := fmt.Sprintf("roberta.encoder.layer.%d.", i)
		g := func(n string) *nn.Param { return m.Get(p + n) }
		m.Layers[i] = Layer{
			Q: g("attention.self.query.weight"), QB: g("attention.self.query.bias"),
			K: g("attention.self.key.weight"), KB: g("attention.self.key.bias"),
			V: g("attention.self.value.weight"), VB: g("attention.self.value.bias"),
			AttnOut: g("attention.output.dense.weight"), AttnOutB: g("attention.output.dense.bias"),
			AttnNorm: g("attention.output.LayerNorm.weight"), AttnNormB: g("attention.output.LayerNorm.bias"),
			Inter: g("intermediate.dense.weight"), InterB: g("intermediate.dense.bias"),
			Out: g("output.dense.weight"), OutB: g("output.dense.bias"),
			OutNorm: g("output.LayerNorm.weight"), OutNormB: g("output.LayerNorm.bias"),
		}
	}
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, p := range []*nn.Param{L.Q, L.K, L.V, L.AttnOut, L.Inter, L.Out} {
			p.Linear = true // applied through Params.Linear (adapters)
		}
	}
	m.ClsDense, m.ClsDenseB = m.Get("classifier.dense.weight"), m.Get("classifier.dense.bias")
	m.ClsOut, m.ClsOutB = m.Get("classifier.out_proj.weight"), m.Get("classifier.out_proj.bias")
}

// New creates a randomly initialised model as transformers does (weights N(0,
// initializer_range), LayerNorm 1 and 0, biases 0).
func New(c *config.RobertaConfig, o Options, seed uint64) (*Model, error) {
	m, err := newModel(c, o)
	if err != nil {
		return nil, err
	}
	if err := m.InitSeeded(specs(m.Cfg), m.DType, o.Device, seed); err != nil {
		m.Close()
		return nil, fmt.Errorf("roberta: init: %w", err)
	}
	m.bind()
	return m, nil
}

// Load reads config.json and safetensors weights from dir. Checkpoints of RobertaModel
// (keys without the "roberta." prefix) and of RobertaForMaskedLM (lm_head.*, pooler)
// load too; a classification head that is absent, or whose label count differs from
// Options.NumLabels, is newly initialised (listed in NewlyInitialized), as transformers
// does when fine-tuning roberta-base.
func Load(dir string, o Options) (*Model, error) {
	c, err := config.LoadRoberta(dir)
	if err != nil {
		return nil, err
	}
	m, err := newModel(c, o)
	if err != nil {
		return nil, err
	}
	src, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("roberta: %w", err)
	}
	prefixed := false
	headFits := true
	for _, n := range src.Names() {
		if strings.HasPrefix(n, "roberta.") {
			prefixed = true
		}
		if n == "classifier.out_proj.weight" {
			if info, _ := src.Info(n); len(info.Shape) != 2 || info.Shape[0] != int64(m.Cfg.NumLabels()) {
				headFits = false
			}
		}
	}
	src.Close()
	g := torch.NewGenerator(o.Seed, torch.CPU)
	defer g.Close()
	lo := nn.LoadOptions{
		Ignore: func(k string) bool {
			return strings.Contains(k, "pooler.") || strings.HasPrefix(k, "lm_head.") || strings.HasSuffix(k, "position_ids")
		},
		InitMissing: func(n string) bool { return strings.HasPrefix(n, "classifier.") },
		Fresh:       func(n string) bool { return !headFits && strings.HasPrefix(n, "classifier.") },
		Gen:         g,
		Key: func(n string) string {
			if !prefixed {
				return strings.TrimPrefix(n, "roberta.")
			}
			return n
		},
	}
	m.NewlyInitialized, err = m.LoadParams(dir, specs(m.Cfg), m.DType, o.Device, lo)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("roberta: loading %s: %w", dir, err)
	}
	m.srcDir = dir
	m.bind()
	return m, nil
}

// Save writes config.json, the safetensors weights and the tokenizer files.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("roberta: %w", err)
	}
	c := *m.Cfg
	c.DType = nn.ConfigDType(m.DType)
	c.Architectures = []string{"RobertaForSequenceClassification"}
	if err := c.Save(dir); err != nil {
		return err
	}
	if err := m.SaveParams(dir, m.DType, m.Opts.MaxShardBytes); err != nil {
		return fmt.Errorf("roberta: saving %s: %w", dir, err)
	}
	return nn.CopyTokenizer(m.srcDir, dir)
}

// Device is where the weights live.
func (m *Model) Device() torch.Device { return m.Opts.Device }

// Config returns the model's config.
func (m *Model) Config() *config.RobertaConfig { return m.Cfg }

// Forward runs the classifier on b: logits [B, num_labels]; with labels, the HF loss
// (cross-entropy for classification with int labels, MSE for regression, BCE with
// logits for multi-label). train enables dropout.
func (m *Model) Forward(s *torch.Scope, b *nn.Batch, train bool) (out *nn.Output, err error) {
	err = torch.Try(func() { out = m.forward(s, b, train) })
	return out, err
}

func (m *Model) forward(s *torch.Scope, b *nn.Batch, train bool) *nn.Output {
	c := m.Cfg
	dev := m.Opts.Device
	ids := s.In(b.InputIDs).ToDevice(torch.I64, dev)
	if ids.Dim() != 2 {
		panic(&torch.Error{Op: "roberta", Msg: fmt.Sprintf("input_ids must be [batch, seq], got %v", ids.Shape())})
	}
	B, T := ids.Size(0), ids.Size(1)
	D, nh := int64(c.HiddenSize), int64(c.NumAttentionHeads)
	hd := D / nh
	pad := float64(c.PadTokenID)
	eps := c.LayerNormEps
	drop := func(x *torch.Tensor, p float64) *torch.Tensor {
		if !train || p == 0 {
			return x
		}
		return x.Dropout(p, true)
	}

	// position ids: cumulative count of non-pad tokens, plus pad_token_id (pads get pad)
	notPad := ids.NeScalar(pad).To(torch.I64)
	pos := cumsum1(s, notPad).Mul(notPad).AddScalar(pad).To(torch.I64)
	tt := s.Zeros([]int64{B, T}, torch.I64, dev)
	h := torch.Embedding(m.W(s, m.WordEmb), ids).
		Add(torch.Embedding(m.W(s, m.TypeEmb), tt)).
		Add(torch.Embedding(m.W(s, m.PosEmb), pos))
	h = h.LayerNorm([]int64{D}, m.W(s, m.EmbNorm), m.W(s, m.EmbNormB), eps)
	h = drop(h, c.HiddenDropoutProb)

	var mask *torch.Tensor
	if b.AttentionMask != nil {
		mask = s.In(b.AttentionMask).ToDevice(torch.Bool, dev).Unsqueeze(1).Unsqueeze(1) // [B,1,1,T]
	}
	scale := 1 / math.Sqrt(float64(hd))
	for i := range m.Layers {
		L := &m.Layers[i]
		// Each layer runs in its own scope and only its output is kept: autograd holds
		// what backward needs, and a frozen layer's activations are freed at once.
		ls := torch.NewScope()
		x := ls.In(h)
		heads := func(w, bias *nn.Param) *torch.Tensor {
			return m.Linear(s, x, w, bias, train).View(B, T, nh, hd).Transpose(1, 2)
		}
		q, k, v := heads(L.Q, L.QB), heads(L.K, L.KB), heads(L.V, L.VB)
		a := torch.ScaledDotProductAttention(q, k, v, torch.SDPAOptions{Mask: mask, Scale: scale, Fused: m.Opts.FusedSDPA,
			Dropout: dropP(train, c.AttentionProbsDropoutProb)})
		a = m.Linear(s, a.Transpose(1, 2).Reshape(B, T, D), L.AttnOut, L.AttnOutB, train)
		x = drop(a, c.HiddenDropoutProb).Add(x).LayerNorm([]int64{D}, m.W(s, L.AttnNorm), m.W(s, L.AttnNormB), eps)
		y := m.Linear(s, m.Linear(s, x, L.Inter, L.InterB, train).Gelu(), L.Out, L.OutB, train)
		out := drop(y, c.HiddenDropoutProb).Add(x).LayerNorm([]int64{D}, m.W(s, L.OutNorm), m.W(s, L.OutNormB), eps)
		prev := h
		h = out.MoveTo(s)
		ls.Close()
		prev.Free()
	}
	cd := c.HiddenDropoutProb
	if c.ClassifierDropout != nil {
		cd = *c.ClassifierDropout
	}
	x := drop(h.Select(1, 0), cd) // [B, D], the <s> token
	x = x.Linear(m.W(s, m.ClsDense), m.W(s, m.ClsDenseB)).Tanh()
	logits := drop(x, cd).Linear(m.W(s, m.ClsOut), m.W(s, m.ClsOutB)) // [B, num_labels]
	out := &nn.Output{Logits: logits}
	if b.Labels != nil {
		out.Loss = m.loss(s, logits, s.In(b.Labels))
	}
	return out
}

func dropP(train bool, p float64) float64 {
	if train {
		return p
	}
	return 0
}

// cumsum1 is a cumulative sum over dim 1 of an int64 [B, T] tensor, as a matmul with an
// upper-triangular ones matrix (exact for integer counts below 2^24).
func cumsum1(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	T := x.Size(1)
	tri := s.Ones([]int64{T, T}, torch.F32, x.Device()).Triu(0) // tri[j, t] = 1 for j <= t
	return x.To(torch.F32).Matmul(tri).To(torch.I64)
}

// loss follows RobertaForSequenceClassification (see nn.ClassificationLoss).
func (m *Model) loss(s *torch.Scope, logits, labels *torch.Tensor) *torch.Tensor {
	problem := m.Cfg.ProblemType
	if m.Cfg.IsRegression() {
		problem = nn.ProblemRegression
	}
	return nn.ClassificationLoss(logits, labels, m.Cfg.NumLabels(), problem, m.Opts.Device)
}
