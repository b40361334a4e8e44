// Package llama is Hugging Face's LlamaForCausalLM in Go over libtorch: the same
// parameter names and layout, the same numerics (RMSNorm in float32 then cast, RoPE with
// rotate_half, grouped-query attention, SwiGLU MLP, tied embeddings), loading and saving
// HF checkpoints (single-file or sharded safetensors, f32/bf16/f16).
package llama

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Options choose how a model is materialised.
type Options struct {
	// DType of the weights; 0 (the zero value) means the config's dtype, or f32.
	DType torch.DType
	// Device for weights and activations (zero value: CPU).
	Device torch.Device
	// FusedSDPA uses libtorch's fused attention where available (2.1+); otherwise
	// the math path (softmax in float32, as transformers' eager attention).
	FusedSDPA bool
	// MaxShardBytes for Save (0: 5 GB, as transformers).
	MaxShardBytes int64
	// Recompute recomputes each decoder layer's activations in backward instead of
	// keeping them (gradient checkpointing), in training forward passes.
	Recompute bool
	// RecomputeMLP (without Recompute) recomputes only each layer's MLP in backward: a
	// layer then keeps the MLP's normed input (hidden size) instead of its gate and up
	// activations (twice the intermediate size), for a second gate/up product per layer
	// in backward.
	RecomputeMLP bool
	// LossChunk > 0 computes the training loss with the logits made that many positions
	// (batch x LossChunk rows) at a time, by one fused node (torch.LinearCrossEntropy)
	// that makes its gradients in forward: the [B, T, vocab] logits are never held whole
	// and nothing is recomputed. Training forward passes then return no logits.
	LossChunk int
	// PadMLP > 0 rounds the MLP's width (intermediate_size) up to a multiple of PadMLP
	// inside the forward pass, with zero-padded weights (torch.PaddedLinear): the same
	// function and gradients, for GPU matrix kernels. llama-1b's width, 5461, gives
	// bf16 rows of 10922 bytes, not a multiple of 16, and cuBLAS then picks kernels 5 to
	// 7 times slower (measured on an H200: 85-143 against 630-706 TFLOP/s at 5504).
	// While an adapter is installed (LoRA) the MLP runs unpadded.
	PadMLP int
	// InitOnDevice draws New's random weights with a generator on Device (fast on a GPU)
	// instead of the CPU's; the values then differ from a CPU-drawn model's.
	InitOnDevice bool
}

// Layer is one decoder layer's parameters.
type Layer struct {
	InputNorm, PostNorm *nn.Param
	Q, K, V, O          *nn.Param
	QB, KB, VB, OB      *nn.Param // biases (attention_bias), else nil
	Gate, Up, Down      *nn.Param
	GateB, UpB, DownB   *nn.Param // biases (mlp_bias), else nil
}

// Model is LlamaForCausalLM. It implements nn.Model.
type Model struct {
	*nn.Params
	Cfg     *config.LlamaConfig
	Opts    Options
	DType   torch.DType
	Embed   *nn.Param
	Layers  []Layer
	Norm    *nn.Param
	LMHead  *nn.Param // nil when tie_word_embeddings
	srcDir  string
	invFreq []float32
}

func specs(c *config.LlamaConfig) []nn.Spec {
	D, I, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	hd := int64(c.HeadDim())
	nh, nkv := int64(c.NumAttentionHeads), int64(c.KVHeads())
	std := c.InitializerRange
	if std == 0 {
		std = 0.02
	}
	var out []nn.Spec
	add := func(name string, shape []int64, layer int, init nn.InitKind) {
		out = append(out, nn.Spec{Name: name, Shape: shape, Layer: layer, Init: init, Std: std})
	}
	out = append(out, nn.Spec{Name: "model.embed_tokens.weight", Shape: []int64{V, D}, Layer: -1, Embed: true, Std: std})
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", []int64{D}, i, nn.InitOnes)
		add(p+"self_attn.q_proj.weight", []int64{nh * hd, D}, i, nn.InitNormal)
		add(p+"self_attn.k_proj.weight", []int64{nkv * hd, D}, i, nn.InitNormal)
		add(p+"self_attn.v_proj.weight", []int64{nkv * hd, D}, i, nn.InitNormal)
		add(p+"self_attn.o_proj.weight", []int64{D, nh * hd}, i, nn.InitNormal)
		if c.AttentionBias {
			add(p+"self_attn.q_proj.bias", []int64{nh * hd}, i, nn.InitZeros)
			add(p+"self_attn.k_proj.bias", []int64{nkv * hd}, i, nn.InitZeros)
			add(p+"self_attn.v_proj.bias", []int64{nkv * hd}, i, nn.InitZeros)
			add(p+"self_attn.o_proj.bias", []int64{D}, i, nn.InitZeros)
		}
		add(p+"post_attention_layernorm.weight", []int64{D}, i, nn.InitOnes)
		add(p+"mlp.gate_proj.weight", []int64{I, D}, i, nn.InitNormal)
		add(p+"mlp.up_proj.weight", []int64{I, D}, i, nn.InitNormal)
		add(p+"mlp.down_proj.weight", []int64{D, I}, i, nn.InitNormal)
		if c.MLPBias {
			add(p+"mlp.gate_proj.bias", []int64{I}, i, nn.InitZeros)
			add(p+"mlp.up_proj.bias", []int64{I}, i, nn.InitZeros)
			add(p+"mlp.down_proj.bias", []int64{D}, i, nn.InitZeros)
		}
	}
	add("model.norm.weight", []int64{D}, -1, nn.InitOnes)
	if !c.TieWordEmbeddings {
		out = append(out, nn.Spec{Name: "lm_head.weight", Shape: []int64{V, D}, Layer: -1, Embed: true, Std: std})
	}
	return out
}

func newModel(c *config.LlamaConfig, o Options) (*Model, error) {
	if c == nil {
		return nil, errors.New("llama: nil config")
	}
	if c.HiddenAct != "" && c.HiddenAct != "silu" && c.HiddenAct != "swish" {
		return nil, fmt.Errorf("llama: hidden_act %q is not supported (want silu)", c.HiddenAct)
	}
	if c.NumAttentionHeads%c.KVHeads() != 0 {
		return nil, fmt.Errorf("llama: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.KVHeads())
	}
	if c.HeadDim()%2 != 0 {
		return nil, fmt.Errorf("llama: head_dim %d must be even for RoPE", c.HeadDim())
	}
	if err := torch.Init(); err != nil {
		return nil, err
	}
	dt := o.DType
	if dt == 0 {
		var err error
		if dt, err = nn.DTypeFromConfig(c.DType); err != nil {
			return nil, fmt.Errorf("llama: config dtype: %w", err)
		}
	}
	if !dt.IsFloat() {
		return nil, fmt.Errorf("llama: weights dtype must be a float type, got %v", dt)
	}
	if err := nn.CheckFits("llama", c.NumParams(), dt, o.Device); err != nil {
		return nil, err
	}
	inv, err := c.InvFreqFloat32()
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	return &Model{Params: nn.NewParams("llama"), Cfg: c, Opts: o, DType: dt, invFreq: inv}, nil
}

func (m *Model) bind() {
	c := m.Cfg
	m.Embed = m.Get("model.embed_tokens.weight")
	m.Layers = make([]Layer, c.NumHiddenLayers)
	for i := range m.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		m.Layers[i] = Layer{
			InputNorm: m.Get(p + "input_layernorm.weight"), PostNorm: m.Get(p + "post_attention_layernorm.weight"),
			Q: m.Get(p + "self_attn.q_proj.weight"), K: m.Get(p + "self_attn.k_proj.weight"),
			V: m.Get(p + "self_attn.v_proj.weight"), O: m.Get(p + "self_attn.o_proj.weight"),
			QB: m.Get(p + "self_attn.q_proj.bias"), KB: m.Get(p + "self_attn.k_proj.bias"),
			VB: m.Get(p + "self_attn.v_proj.bias"), OB: m.Get(p + "self_attn.o_proj.bias"),
			Gate: m.Get(p + "mlp.gate_proj.weight"), Up: m.Get(p + "mlp.up_proj.weight"), Down: m.Get(p + "mlp.down_proj.weight"),
			GateB: m.Get(p + "mlp.gate_proj.bias"), UpB: m.Get(p + "mlp.up_proj.bias"), DownB: m.Get(p + "mlp.down_proj.bias"),
		}
	}
	m.Norm = m.Get("model.norm.weight")
	m.LMHead = m.Get("lm_head.weight")
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, p := range []*nn.Param{L.Q, L.K, L.V, L.O, L.Gate, L.Up, L.Down} {
			p.Linear = true // applied through Params.Linear (adapters)
		}
	}
}

// New creates a randomly initialised model as transformers does (weights N(0,
// initializer_range), norms 1, biases 0), drawing from a generator seeded with seed.
func New(c *config.LlamaConfig, o Options, seed uint64) (*Model, error) {
	m, err := newModel(c, o)
	if err != nil {
		return nil, err
	}
	if o.InitOnDevice && o.Device != torch.CPU {
		g := torch.NewGenerator(seed, o.Device)
		err = m.InitParams(specs(c), m.DType, o.Device, g)
		g.Close()
	} else {
		err = m.InitSeeded(specs(c), m.DType, o.Device, seed)
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("llama: init: %w", err)
	}
	m.bind()
	return m, nil
}

// Load reads config.json and the safetensors weights (model.safetensors or a sharded
// index) from dir. Missing, unexpected and mis-shaped keys are all reported in one
// error. PyTorch .bin checkpoints are refused (convert them with save_pretrained).
func Load(dir string, o Options) (*Model, error) {
	c, err := config.LoadLlama(dir)
	if err != nil {
		return nil, err
	}
	m, err := newModel(c, o)
	if err != nil {
		return nil, err
	}
	ignore := func(n string) bool { return strings.HasSuffix(n, "rotary_emb.inv_freq") }
	if _, err := m.LoadParams(dir, specs(c), m.DType, o.Device, nn.LoadOptions{Ignore: ignore}); err != nil {
		m.Close()
		return nil, fmt.Errorf("llama: loading %s: %w", dir, err)
	}
	m.srcDir = dir
	m.bind()
	return m, nil
}

// Save writes config.json (dtype set to the weights' dtype), the safetensors weights
// (sharded over Options.MaxShardBytes) and the tokenizer files of the source directory.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("llama: %w", err)
	}
	c := *m.Cfg
	c.DType = nn.ConfigDType(m.DType)
	if len(c.Architectures) == 0 {
		c.Architectures = []string{"LlamaForCausalLM"}
	}
	if err := c.Save(dir); err != nil {
		return err
	}
	if err := m.SaveParams(dir, m.DType, m.Opts.MaxShardBytes); err != nil {
		return fmt.Errorf("llama: saving %s: %w", filepath.Join(dir, "model.safetensors"), err)
	}
	return nn.CopyTokenizer(m.srcDir, dir)
}

// SetRecompute switches Options.Recompute for the next forward passes (nn.Recomputer).
func (m *Model) SetRecompute(on bool) bool {
	prev := m.Opts.Recompute
	m.Opts.Recompute = on
	return prev
}

// Recomputes reports whether training forward passes recompute activations in backward
// (Options.Recompute or RecomputeMLP): a random draw inside a recomputed part (dropout)
// would differ between the two runs.
func (m *Model) Recomputes() bool { return m.Opts.Recompute || m.Opts.RecomputeMLP }

// Device is where the weights live.
func (m *Model) Device() torch.Device { return m.Opts.Device }

// Config returns the model's config.
func (m *Model) Config() *config.LlamaConfig { return m.Cfg }

// rope returns cos and sin [T, head_dim] of positions 0..T-1 in dtype dt.
func (m *Model) rope(s *torch.Scope, T int64, dt torch.DType) (cos, sin *torch.Tensor) {
	return m.ropeAt(s, 0, T, dt)
}

// ropeAt returns cos and sin [T, head_dim] of positions start..start+T-1 in dtype dt,
// computed in float32 as transformers does: freqs = positions x inv_freq, emb =
// cat(freqs, freqs).
func (m *Model) ropeAt(s *torch.Scope, start, T int64, dt torch.DType) (cos, sin *torch.Tensor) {
	dev := m.Opts.Device
	inv := s.FromFloat32(m.invFreq, int64(len(m.invFreq))).ToDevice(torch.F32, dev)
	pos := s.Arange(float64(start), float64(start+T), 1, torch.F32, dev).Unsqueeze(1) // [T, 1]
	freqs := pos.Mul(inv.Unsqueeze(0))                                                // [T, hd/2]
	emb := torch.Cat([]*torch.Tensor{freqs, freqs}, 1)                                // [T, hd]
	scale := m.Cfg.RopeAttentionFactor()
	cos, sin = emb.Cos(), emb.Sin()
	if scale != 1 {
		cos, sin = cos.MulScalar(scale), sin.MulScalar(scale)
	}
	return cos.To(dt), sin.To(dt)
}

// rotateHalf is cat(-x2, x1) over the last dim.
func rotateHalf(x *torch.Tensor) *torch.Tensor {
	h := x.Size(-1) / 2
	x1 := x.Narrow(-1, 0, h)
	x2 := x.Narrow(-1, h, h)
	return torch.Cat([]*torch.Tensor{x2.Neg(), x1}, -1)
}

// repeatKV expands [B, nkv, T, hd] to [B, nkv*n, T, hd] (each kv head n times in a row).
func repeatKV(x *torch.Tensor, n int64) *torch.Tensor {
	if n == 1 {
		return x
	}
	B, nkv, T, hd := x.Size(0), x.Size(1), x.Size(2), x.Size(3)
	return x.Unsqueeze(2).Expand(B, nkv, n, T, hd).Reshape(B, nkv*n, T, hd)
}

// Forward runs LlamaForCausalLM on b: logits [B, T, V] (in the weights' dtype) and the
// causal-LM loss (mean cross-entropy of logits[:, :-1] against labels[:, 1:], computed in
// float32; labels default to the input ids; -100 is ignored; padded positions
// (attention mask 0) are ignored too).
func (m *Model) Forward(s *torch.Scope, b *nn.Batch, train bool) (out *nn.Output, err error) {
	err = torch.Try(func() { out = m.forward(s, b, train) })
	return out, err
}

func (m *Model) forward(s *torch.Scope, b *nn.Batch, train bool) *nn.Output {
	h := m.hidden(s, b, train)
	head := m.LMHead
	if head == nil {
		head = m.Embed
	}
	if train && m.Opts.LossChunk > 0 {
		return &nn.Output{Loss: m.chunkedLoss(s, h, head, b)}
	}
	logits := h.Linear(m.W(s, head), nil) // [B, T, V]
	return &nn.Output{Logits: logits, Loss: m.loss(s, logits, b)}
}

// hidden runs the decoder (LlamaModel) on b: the final normed hidden states [B, T, D].
func (m *Model) hidden(s *torch.Scope, b *nn.Batch, train bool) *torch.Tensor {
	c := m.Cfg
	ids := b.InputIDs
	if ids.Dim() != 2 {
		panic(&torch.Error{Op: "llama", Msg: fmt.Sprintf("input_ids must be [batch, seq], got %v", ids.Shape())})
	}
	B, T := ids.Size(0), ids.Size(1)
	hd := int64(c.HeadDim())
	dev := m.Opts.Device
	ids = s.In(ids).ToDevice(torch.I64, dev)

	h := torch.Embedding(m.W(s, m.Embed), ids) // [B, T, D]
	cos, sin := m.rope(s, T, m.DType)          // [T, hd]
	cos4, sin4 := cos.Unsqueeze(0).Unsqueeze(0), sin.Unsqueeze(0).Unsqueeze(0)

	// attention mask: causal, plus key padding when a mask is given (each query may
	// always see itself, so padded rows stay finite).
	var mask *torch.Tensor
	causal := true
	if b.AttentionMask != nil {
		am := s.In(b.AttentionMask).ToDevice(torch.Bool, dev)                // [B, T]
		keys := am.Unsqueeze(1).Unsqueeze(1)                                 // [B, 1, 1, T]
		tri := s.Ones([]int64{T, T}, torch.Bool, dev).Tril(0)                // [T, T]
		eye := s.Ones([]int64{T, T}, torch.Bool, dev).Tril(0).Triu(0)        // diagonal
		mask = tri.Unsqueeze(0).Unsqueeze(0).LogicalAnd(keys).LogicalOr(eye) // [B, 1, T, T]
		causal = false
	}
	eps := c.RMSNormEps
	scale := 1 / math.Sqrt(float64(hd))
	var token *torch.Tensor // carries the graph through recomputed blocks
	if train && (m.Opts.Recompute || m.Opts.RecomputeMLP) {
		token = s.Zeros(nil, torch.F32, dev).SetRequiresGrad(true)
	}
	var mlpToken *torch.Tensor // recompute the MLPs only
	if token != nil && !m.Opts.Recompute {
		mlpToken = token
	}
	outer := s
	for i := range m.Layers {
		L := &m.Layers[i]
		layer := func(s *torch.Scope, h *torch.Tensor) *torch.Tensor {
			return m.decoderLayer(s, outer, mlpToken, L, h, cos4, sin4, mask, causal, B, T, scale, train)
		}
		prev := h
		if token != nil && m.Opts.Recompute {
			h = torch.Checkpoint(h, token, layer)
		} else {
			// Each layer runs in its own scope and only its output is kept: autograd
			// holds what backward needs, and a frozen layer's activations are freed now.
			ls := torch.NewScope()
			h = layer(ls, ls.In(h)).MoveTo(s)
			ls.Close()
		}
		prev.Free()
	}
	return h.RMSNorm(m.W(s, m.Norm), eps)
}

// mlpWidth is the MLP's width inside the forward pass: intermediate_size rounded up to a
// multiple of Opts.PadMLP.
func (m *Model) mlpWidth() int64 {
	w, p := int64(m.Cfg.IntermediateSize), int64(m.Opts.PadMLP)
	if p <= 1 {
		return w
	}
	return (w + p - 1) / p * p
}

// decoderLayer is one LlamaDecoderLayer: h + attn(norm(h)), then + mlp(norm(.)). With
// mlpToken the MLP is recomputed in backward (torch.Checkpoint); its input is moved to
// outer, the forward pass's scope, which keeps the recompute registered until backward.
func (m *Model) decoderLayer(s, outer *torch.Scope, mlpToken *torch.Tensor, L *Layer, h, cos4, sin4, mask *torch.Tensor, causal bool, B, T int64, scale float64, train bool) *torch.Tensor {
	c := m.Cfg
	nh, nkv, hd := int64(c.NumAttentionHeads), int64(c.KVHeads()), int64(c.HeadDim())
	eps := c.RMSNormEps
	{
		x := h.RMSNorm(m.W(s, L.InputNorm), eps)
		q := m.Linear(s, x, L.Q, L.QB, train).View(B, T, nh, hd).Transpose(1, 2)
		k := m.Linear(s, x, L.K, L.KB, train).View(B, T, nkv, hd).Transpose(1, 2)
		v := m.Linear(s, x, L.V, L.VB, train).View(B, T, nkv, hd).Transpose(1, 2)
		q = q.Mul(cos4).Add(rotateHalf(q).Mul(sin4))
		k = k.Mul(cos4).Add(rotateHalf(k).Mul(sin4))
		k, v = repeatKV(k, nh/nkv), repeatKV(v, nh/nkv)
		a := torch.ScaledDotProductAttention(q, k, v, torch.SDPAOptions{Mask: mask, Causal: causal, Scale: scale, Fused: m.Opts.FusedSDPA})
		a = m.Linear(s, a.Transpose(1, 2).Reshape(B, T, nh*hd), L.O, L.OB, train)
		h = h.Add(a)
		x = h.RMSNorm(m.W(s, L.PostNorm), eps)
		mlp := func(s *torch.Scope, x *torch.Tensor) *torch.Tensor { return m.mlp(s, L, x, train) }
		if mlpToken != nil {
			y := torch.Checkpoint(x.MoveTo(outer), mlpToken, mlp)
			h = h.Add(y)
			y.Free()
		} else {
			h = h.Add(mlp(s, x))
		}
	}
	return h
}

// mlp is the layer's SwiGLU MLP: down(silu(gate(x)) * up(x)), at the padded width
// when Opts.PadMLP asks for one.
func (m *Model) mlp(s *torch.Scope, L *Layer, x *torch.Tensor, train bool) *torch.Tensor {
	c := m.Cfg
	if w := m.mlpWidth(); w > int64(c.IntermediateSize) && !m.HasAdapter() {
		g := torch.PaddedLinear(x, m.W(s, L.Gate), m.W(s, L.GateB), w)
		u := torch.PaddedLinear(x, m.W(s, L.Up), m.W(s, L.UpB), w)
		return torch.PaddedLinear(torch.SwiGLU(g, u), m.W(s, L.Down), m.W(s, L.DownB), int64(c.HiddenSize))
	}
	g := m.Linear(s, x, L.Gate, L.GateB, train)
	u := m.Linear(s, x, L.Up, L.UpB, train)
	return m.Linear(s, torch.SwiGLU(g, u), L.Down, L.DownB, train)
}

// targets returns the shifted labels [B, T-1] (-100 ignored), as loss uses them.
func (m *Model) targets(s *torch.Scope, b *nn.Batch, T int64) *torch.Tensor {
	dev := m.Opts.Device
	labels := b.Labels
	if labels == nil {
		labels = b.InputIDs
	}
	labels = s.In(labels).ToDevice(torch.I64, dev)
	if b.AttentionMask != nil && b.Labels == nil {
		pad := s.In(b.AttentionMask).ToDevice(torch.I64, dev).EqScalar(0)
		labels = labels.MaskedFill(pad, -100)
	}
	return labels.Narrow(1, 1, T-1)
}

// chunkedLoss is loss with the logits made LossChunk positions (B*LossChunk rows) at a
// time by one fused node (torch.LinearCrossEntropy): the [B, T, V] logits and their
// float32 copy never exist whole, and nothing is recomputed in backward.
func (m *Model) chunkedLoss(s *torch.Scope, h *torch.Tensor, head *nn.Param, b *nn.Batch) *torch.Tensor {
	B, T, D := h.Size(0), h.Size(1), h.Size(2)
	if T < 2 {
		return nil
	}
	labels := m.targets(s, b, T).Contiguous().Reshape(B * (T - 1))
	x := h.Narrow(1, 0, T-1).Reshape(B*(T-1), D)
	return torch.LinearCrossEntropy(x, m.W(s, head), labels, -100, B*int64(m.Opts.LossChunk))
}

// loss is transformers' ForCausalLMLoss: logits in float32, labels shifted left by one
// and padded with -100, mean cross-entropy over non-ignored positions.
func (m *Model) loss(s *torch.Scope, logits *torch.Tensor, b *nn.Batch) *torch.Tensor {
	B, T, V := logits.Size(0), logits.Size(1), logits.Size(2)
	if T < 2 {
		return nil
	}
	shifted := m.targets(s, b, T).Contiguous().Reshape(B * (T - 1))
	lg := logits.Narrow(1, 0, T-1).To(torch.F32).Reshape(B*(T-1), V)
	return torch.CrossEntropy(lg, shifted, -100, torch.ReduceMean)
}
