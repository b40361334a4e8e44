package eval

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/torch"
)

func TestSetup(t *testing.T) {
	dev, err := Setup(0, "cpu")
	require.NoError(t, err)
	assert.Equal(t, torch.CPU, dev)
	assert.GreaterOrEqual(t, torch.NumThreads(), 1)
	Setup(1, "cpu")
	assert.Equal(t, 1, torch.NumThreads())
	_, err = Setup(0, "tpu")
	assert.ErrorContains(t, err, "--device")
	if !torch.CUDAAvailable() {
		_, err = Setup(0, "cuda:0")
		assert.ErrorContains(t, err, "no such CUDA device")
	}
	_, err = Setup(0, "cuda:99")
	assert.ErrorContains(t, err, "cuda:99")
	dt, err := ParseTrainDType("bf16")
	require.NoError(t, err)
	assert.Equal(t, torch.BF16, dt)
	_, err = ParseTrainDType("i64")
	assert.ErrorContains(t, err, "want f32 or bf16")
	torch.SetNumThreads(0)
}
