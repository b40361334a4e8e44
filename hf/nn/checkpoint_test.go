package nn

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

func TestMain(m *testing.M) {
	if err := torch.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestSafetensorsBridge: tensors written through SafetensorsTensor read back bit for bit
// with ReadTensors (bf16 converted on the way out when asked), and CopyParams fills
// existing parameters, refusing a missing, extra or mis-shaped tensor by name.
func TestSafetensorsBridge(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := s.FromFloat32([]float32{1, 2.5, -3, 4}, 2, 2)
	b := s.FromInt64([]int64{7, 8, 9}, 3)
	ta, err := SafetensorsTensor("a", a, 0)
	require.NoError(t, err)
	tb, err := SafetensorsTensor("b", b, 0)
	require.NoError(t, err)
	tc, err := SafetensorsTensor("c", a, torch.BF16)
	require.NoError(t, err)
	assert.Equal(t, safetensors.BF16, tc.DType)
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	require.NoError(t, safetensors.Save(path, []safetensors.Tensor{ta, tb, tc}, nil))
	got, err := ReadTensors(s, path)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, a.Bytes(), got["a"].Bytes())
	assert.Equal(t, []int64{7, 8, 9}, got["b"].Int64s())
	assert.Equal(t, torch.BF16, got["c"].DType())
	assert.Equal(t, []float64{1, 2.5, -3, 4}, got["c"].To(torch.F64).Float64s())

	// a model directory with a and b
	mdir := t.TempDir()
	require.NoError(t, safetensors.Save(filepath.Join(mdir, "model.safetensors"), []safetensors.Tensor{ta, tb}, nil))
	ps := NewParams("p")
	defer ps.Close()
	pa := ps.Add("a", s.Zeros([]int64{2, 2}, torch.F32, torch.CPU).MoveTo(ps.Store), 0)
	pb := ps.Add("b", s.Zeros([]int64{3}, torch.I64, torch.CPU).MoveTo(ps.Store), 0)
	require.NoError(t, CopyParams(mdir, ps.Parameters()))
	assert.Equal(t, a.Bytes(), pa.T.Bytes())
	assert.Equal(t, []int64{7, 8, 9}, pb.T.Int64s())
	assert.ErrorContains(t, CopyParams(mdir, ps.Parameters()[:1]), `has tensor "b", which the model lacks`)
	q := NewParams("q")
	defer q.Close()
	q.Add("a", s.Zeros([]int64{4}, torch.F32, torch.CPU).MoveTo(q.Store), 0)
	assert.ErrorContains(t, CopyParams(mdir, q.Parameters()), `"a" is F32 [2 2], the model's is float32 [4]`)
	r := NewParams("r")
	defer r.Close()
	r.Add("z", s.Zeros([]int64{1}, torch.F32, torch.CPU).MoveTo(r.Store), 0)
	assert.ErrorContains(t, CopyParams(mdir, r.Parameters()), `lacks parameter "z"`)
}
