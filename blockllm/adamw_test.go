package blockllm

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

// paramsModel is an nn.Model over given parameters (no forward): enough for optimizers.
type paramsModel struct{ *nn.Params }

func (paramsModel) Device() torch.Device { return testDevice }
func (paramsModel) Forward(*torch.Scope, *nn.Batch, bool) (*nn.Output, error) {
	return nil, fmt.Errorf("no forward")
}

// setGradsTo gives each parameter the gradient g[name] (through backward of
// sum(p * g), whose gradient is g).
func setGradsTo(t *testing.T, ps []*nn.Param, g map[string]*torch.Tensor) {
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		for _, p := range ps {
			if g[p.Name] == nil {
				continue
			}
			p.T.SetRequiresGrad(true)
			s.In(p.T).Mul(g[p.Name]).Sum().Backward()
		}
		return nil
	}))
}

func fixtureRoot() string {
	if r := os.Getenv("BLOCKLLM_FIXTURES"); r != "" {
		return r
	}
	return filepath.Join("..", "testdata", "hf")
}

// TestAdamWGolden: one AdamW step (lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight decay
// 0.1) matches torch.optim.AdamW's adamw_step1.* of every fixture that has them.
func TestAdamWGolden(t *testing.T) {
	root := fixtureRoot()
	dirs, err := os.ReadDir(root)
	require.NoError(t, err)
	ran := 0
	for _, d := range dirs {
		golden := filepath.Join(root, d.Name(), "golden.safetensors")
		if _, err := os.Stat(golden); err != nil {
			continue
		}
		t.Run(d.Name(), func(t *testing.T) {
			gf, err := safetensors.Open(golden)
			require.NoError(t, err)
			defer gf.Close()
			var want []string
			for _, n := range gf.Names() {
				if k, ok := strings.CutPrefix(n, "adamw_step1."); ok {
					want = append(want, k)
				}
			}
			if len(want) == 0 {
				t.Skip("no adamw_step1 tensors")
			}
			mf, err := safetensors.OpenModel(filepath.Join(root, d.Name()))
			require.NoError(t, err)
			defer mf.Close()
			s := torch.NewScope()
			defer s.Close()
			load := func(src interface {
				Info(string) (safetensors.TensorInfo, bool)
				Data(string) ([]byte, error)
			}, name string) *torch.Tensor {
				info, ok := src.Info(name)
				require.True(t, ok, name)
				b, err := src.Data(name)
				require.NoError(t, err)
				dt, err := nn.ToTorch(info.DType)
				require.NoError(t, err)
				return s.FromBytes(b, info.Shape, dt).ToDevice(dt, testDevice)
			}
			ps := nn.NewParams("golden")
			defer ps.Close()
			grads := map[string]*torch.Tensor{}
			for _, n := range want {
				ps.Add(n, load(mf, n).MoveTo(ps.Store), 0)
				grads[n] = load(gf, "grad."+n)
			}
			m := paramsModel{ps}
			setGradsTo(t, m.Parameters(), grads)
			o, err := NewAdamW(m, AdamConfig{WeightDecay: 0.1})
			require.NoError(t, err)
			defer o.Close()
			require.NoError(t, o.Step(1e-2))
			for _, p := range m.Parameters() {
				exp := load(gf, "adamw_step1."+p.Name)
				tol := 1e-5
				if p.T.DType() == torch.BF16 {
					tol = 1e-2
				}
				assert.True(t, torch.AllClose(p.T, exp, 0, tol), "%s differs from torch's AdamW step", p.Name)
				assert.Nil(t, p.T.GradIn(s), "gradient freed after the step")
			}
			ran++
		})
	}
	assert.Positive(t, ran, "no fixture with adamw_step1 found under %s", root)
}

// TestAdamWFormula checks two steps (bias correction of step 2) against the formula.
// TestAdamWFormula checks two steps against the formula, per-tensor and with the
// multi-tensor (Fused) path.
func TestAdamWFormula(t *testing.T) {
	for _, fused := range []bool{false, true} {
		t.Run(fmt.Sprint("fused=", fused), func(t *testing.T) { adamWFormula(t, fused) })
	}
}

func adamWFormula(t *testing.T, fused bool) {
	ps := nn.NewParams("formula")
	defer ps.Close()
	w0 := []float32{0.5, -1, 2, 0.1}
	gs := [][]float32{{0.1, 0.2, -0.3, 0}, {-0.2, 0.05, 0.3, 1}}
	ps.Add("w", ps.Store.FromFloat32(w0, 4), 0)
	m := paramsModel{ps}
	lr, b1, b2, eps, wd := 0.01, 0.8, 0.99, 1e-6, 0.05
	o, err := NewAdamW(m, AdamConfig{Beta1: b1, Beta2: b2, Eps: eps, WeightDecay: wd, Fused: fused})
	require.NoError(t, err)
	defer o.Close()
	p := make([]float64, 4)
	mm := make([]float64, 4)
	vv := make([]float64, 4)
	for i := range p {
		p[i] = float64(w0[i])
	}
	for step, g := range gs {
		s := torch.NewScope()
		setGradsTo(t, m.Parameters(), map[string]*torch.Tensor{"w": s.FromFloat32(g, 4)})
		s.Close()
		require.NoError(t, o.Step(lr))
		k := float64(step + 1)
		for i := range p {
			p[i] *= 1 - lr*wd
			mm[i] = b1*mm[i] + (1-b1)*float64(g[i])
			vv[i] = b2*vv[i] + (1-b2)*float64(g[i])*float64(g[i])
			den := math.Sqrt(vv[i])/math.Sqrt(1-math.Pow(b2, k)) + eps
			p[i] -= lr / (1 - math.Pow(b1, k)) * mm[i] / den
		}
		got := ps.Get("w").T.Float64s()
		for i := range p {
			assert.InDelta(t, p[i], got[i], 1e-6, "step %d, w[%d]", step+1, i)
		}
	}
	assert.Equal(t, int64(2*4*4), o.StateBytes())
}

func TestLoadStateErrors(t *testing.T) {
	m := newToy(t, toyOpts{}, 1)
	d := newFixedData(64, 2, 8, 1, 1)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)
	a, err := NewAdamW(m, AdamConfig{})
	require.NoError(t, err)
	defer a.Close()
	manualStep(t, m, a, b, 1e-3)
	st, err := a.SaveState()
	require.NoError(t, err)

	f32, err := NewAdamW(m, AdamConfig{StateF32: true})
	require.NoError(t, err)
	defer f32.Close()
	require.NoError(t, f32.LoadState(st), "f32 weights: f32 state either way")

	bl, err := NewBlockLLM(m, BlockLLMConfig{})
	require.NoError(t, err)
	defer bl.Close()
	assert.ErrorContains(t, bl.LoadState(st), `optimizer state is for method "adamw", not "blockllm"`)

	bad := &State{Tensors: map[string]*torch.Tensor{}, Meta: st.Meta}
	for k, v := range st.Tensors {
		bad.Tensors[k] = v
	}
	delete(bad.Tensors, "layers.0.w1.exp_avg")
	assert.ErrorContains(t, a.LoadState(bad), `lacks tensor "layers.0.w1.exp_avg"`)
	bad.Tensors["layers.0.w1.exp_avg"] = s.Zeros([]int64{3}, torch.F32, torch.CPU)
	assert.ErrorContains(t, a.LoadState(bad), `"layers.0.w1.exp_avg" has shape [3], want [16 16]`)
	bad.Tensors["layers.0.w1.exp_avg"] = st.Tensors["layers.0.w1.exp_avg"]
	bad.Tensors["stray"] = s.Zeros([]int64{3}, torch.F32, torch.CPU)
	assert.ErrorContains(t, a.LoadState(bad), `unexpected optimizer tensor "stray"`)
	assert.ErrorContains(t, a.LoadState(&State{Meta: []byte("{")}), "optimizer state metadata")
	assert.Equal(t, 2*4*m.NumParams(), a.StateBytes(), "failed loads keep the state")
	require.NoError(t, a.LoadState(st), "a snapshot of the optimizer's own state")
	assert.Equal(t, 2*4*m.NumParams(), a.StateBytes())
}
