package blockllm

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

var testDevice = torch.CPU

func TestMain(m *testing.M) {
	dev, err := torch.DeviceFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDevice = dev
	torch.SetNumThreads(2)
	if os.Getenv("BLOCKLLM_HELPER") != "" {
		os.Exit(helperMain())
	}
	if os.Getenv("BLOCKLLM_DP_SCENARIO") != "" {
		os.Exit(dpWorker())
	}
	os.Exit(m.Run())
}

// toy is a small causal LM implementing nn.Model: embedding [V, D], L residual layers
// x + tanh(x W1^T + b1) W2^T, a final bias, and an LM head [V, D] (or a task head).
type toy struct {
	*nn.Params
	V, D, L int
	dev     torch.Device
	dt      torch.DType
	calls   map[string]int // params.W calls in the last forward, by name
}

type toyOpts struct {
	V, D, L  int
	taskHead bool // the head is a Param.Head (always trained) instead of an LM head
	dt       torch.DType
}

func newToy(t testing.TB, o toyOpts, seed uint64) *toy {
	t.Helper()
	if o.V == 0 {
		o.V, o.D, o.L = 64, 16, 8
	}
	if o.dt == 0 {
		o.dt = torch.F32
	}
	m := &toy{Params: nn.NewParams("toy"), V: o.V, D: o.D, L: o.L, dev: testDevice, dt: o.dt}
	g := torch.NewGenerator(seed, torch.CPU)
	defer g.Close()
	st := m.Store
	randn := func(shape ...int64) *torch.Tensor {
		x := st.Randn(shape, torch.F32, torch.CPU, g)
		x.MulScalarInPlace(0.3)
		if o.dt != torch.F32 || testDevice != torch.CPU {
			y := st.Empty(shape, o.dt, testDevice)
			y.CopyFrom(x)
			x.Free()
			x = y
		}
		return x
	}
	V, D := int64(o.V), int64(o.D)
	m.Add("embed.weight", randn(V, D), -1).Embed = true
	for l := 0; l < o.L; l++ {
		m.Add(fmt.Sprintf("layers.%d.w1", l), randn(D, D), l)
		m.Add(fmt.Sprintf("layers.%d.b1", l), randn(D), l)
		m.Add(fmt.Sprintf("layers.%d.w2", l), randn(D, D), l)
	}
	m.Add("final.bias", randn(D), -1)
	h := m.Add("head.weight", randn(V, D), -1)
	if o.taskHead {
		h.Head = true
	} else {
		h.Embed = true
	}
	t.Cleanup(m.Close)
	return m
}

func (m *toy) Device() torch.Device { return m.dev }

func (m *toy) w(s *torch.Scope, name string) *torch.Tensor {
	if m.calls != nil {
		m.calls[name]++
	}
	return m.W(s, m.Get(name))
}

// Forward: logits [B, T, V]; loss = CE(logits[:, :-1], ids[:, 1:]).
func (m *toy) Forward(s *torch.Scope, b *nn.Batch, train bool) (*nn.Output, error) {
	var out *nn.Output
	err := torch.Try(func() {
		ids := s.In(b.InputIDs)
		B, T := ids.Size(0), ids.Size(1)
		x := torch.Embedding(m.w(s, "embed.weight"), ids)
		for l := 0; l < m.L; l++ {
			// each layer in its own scope, only its output kept: intermediates that
			// autograd does not save (all of them in frozen layers) are freed at once
			ls := torch.NewScope()
			xl := ls.In(x)
			h := xl.Linear(m.w(ls, fmt.Sprintf("layers.%d.w1", l)), m.w(ls, fmt.Sprintf("layers.%d.b1", l))).Tanh()
			prev := x
			x = xl.Add(h.Linear(m.w(ls, fmt.Sprintf("layers.%d.w2", l)), nil)).MoveTo(s)
			ls.Close()
			prev.Free() // autograd keeps its own reference when it saved it

		}
		x = x.Add(m.w(s, "final.bias"))
		logits := x.Linear(m.w(s, "head.weight"), nil)
		pred := logits.Slice(1, 0, T-1, 1).Reshape(-1, int64(m.V))
		tgt := ids.Slice(1, 1, T, 1).Reshape(-1)
		loss := torch.CrossEntropy(pred.To(torch.F32), tgt, -100, torch.ReduceMean)
		_ = B
		out = &nn.Output{Logits: logits, Loss: loss}
	})
	return out, err
}

// fixedData cycles through precomputed batches (deterministic, resumable).
type fixedData struct {
	ids  [][]int64 // per batch, row-major [B*T]
	B, T int
	pos  int
	dev  torch.Device
}

func newFixedData(V, B, T, n int, seed uint64) *fixedData {
	r, _ := NewRandomTokens(V, B, T, seed, torch.CPU)
	d := &fixedData{B: B, T: T, dev: testDevice}
	for i := 0; i < n; i++ {
		var b *nn.Batch
		_ = torch.WithScope(func(s *torch.Scope) error {
			var err error
			b, err = r.Next(s)
			if err != nil {
				return err
			}
			d.ids = append(d.ids, b.InputIDs.Int64s())
			return nil
		})
	}
	return d
}

func (d *fixedData) Next(s *torch.Scope) (*nn.Batch, error) {
	ids := d.ids[d.pos%len(d.ids)]
	d.pos++
	t := s.FromInt64(ids, int64(d.B), int64(d.T))
	if d.dev != torch.CPU {
		t = t.ToDevice(torch.I64, d.dev)
	}
	return &nn.Batch{InputIDs: t}, nil
}

func (d *fixedData) State() (json.RawMessage, error) { return json.Marshal(d.pos) }

func (d *fixedData) Restore(b json.RawMessage) error { return json.Unmarshal(b, &d.pos) }

// paramBytes snapshots every parameter's raw bytes.
func paramBytes(m nn.Model) map[string][]byte {
	out := map[string][]byte{}
	for _, p := range m.Parameters() {
		out[p.Name] = p.T.Bytes()
	}
	return out
}
